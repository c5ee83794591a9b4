"""The Optuna search on time folds: reproducible with a seed, keeps the fold-best trial,
starts from params.yaml's configuration, prunes trials that fall behind."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import optuna
import pandas as pd
import pytest

from training.modelling.autoencoder import AutoencoderConfig
from training.modelling.classifier import ClassifierConfig
from training.modelling.folds import FoldConfig, prequential_folds
from training.modelling.search import (
    Budget,
    FoldData,
    SearchConfig,
    _run,
    search_autoencoder,
    search_classifier,
)

FEATURES = ["signal", "weak", "noise", "log_amount"]


def _folds(seed: int = 0, n: int = 4_000) -> list[FoldData]:
    rng = np.random.default_rng(seed)
    ts = pd.Series(
        pd.Timestamp("2025-01-01", tz="UTC")
        + pd.to_timedelta(np.sort(rng.uniform(0, 40, n)), unit="D")
    )
    signal, weak = rng.normal(size=n), rng.normal(size=n)
    y = (signal + 0.5 * weak + 0.6 * rng.normal(size=n) > 2.3).astype(np.int8)
    x = np.column_stack([signal, weak, rng.normal(size=n), rng.normal(size=n)])
    folds = prequential_folds(ts, y, FoldConfig(folds=2, window_days=5, gap_days=2))
    return [FoldData(f, x[f.train], y[f.train], x[f.window], y[f.window]) for f in folds]


BASE = ClassifierConfig(
    imbalance=("none", "scale_pos_weight"),
    max_rounds=30,
    early_stopping_rounds=5,
    min_child_samples=20,
    monotone_increasing=("log_amount",),
)


def _search(folds: list[FoldData], trials: int, seed: int = 3, pruning: bool = True):
    config = SearchConfig(seed=seed, pruning=pruning, classifier=Budget(trials, None))
    return search_classifier(folds, FEATURES, BASE, config, seed=0, threads=1, log=lambda _: None)


def test_same_seed_same_trials_and_result() -> None:
    folds = _folds()
    first, second = _search(folds, 4), _search(folds, 4)
    assert [t.params for t in first.study.trials] == [t.params for t in second.study.trials]
    assert [t.value for t in first.study.trials] == [t.value for t in second.study.trials]
    assert first.config == second.config and first.fold_auprc == second.fold_auprc
    other = _search(folds, 4, seed=4)
    assert [t.params for t in other.study.trials][2:] != [t.params for t in first.study.trials][2:]


def test_the_params_yaml_configuration_runs_first_once_per_strategy() -> None:
    result = _search(_folds(), 1)
    first = [t.params for t in result.study.trials[:2]]
    assert [p["imbalance"] for p in first] == ["none", "scale_pos_weight"]
    for params in first:
        assert params["learning_rate"] == BASE.learning_rate
        assert params["num_leaves"] == BASE.num_leaves and params["monotone"] is True
    assert len(result.study.trials) == 3  # two enqueued + the budget of one


def test_the_kept_configuration_is_the_fold_best_trial() -> None:
    result = _search(_folds(), 5)
    complete = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert result.study.best_trial.number == best.number
    assert result.fold_auprc == best.user_attrs["fold_auprc"]
    assert np.mean(result.fold_auprc) == pytest.approx(best.value)
    assert result.config.imbalance == (best.params["imbalance"],)
    assert result.config.learning_rate == best.params["learning_rate"]
    assert result.config.monotone_increasing == (("log_amount",) if best.params["monotone"] else ())
    # The members are that trial's, one per fold, scored on their own windows.
    assert [m.val_auprc for m in result.members] == pytest.approx(result.fold_auprc)


def test_trials_behind_the_median_after_a_fold_are_pruned() -> None:
    folds = _folds()
    result = _search(folds, 14)
    states = [t.state for t in result.study.trials]
    pruned = [t for t in result.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, states
    for trial in pruned:
        # Stopped after its first fold, and that fold was below the others' median there.
        assert list(trial.intermediate_values) == [1]
    unpruned = _search(folds, 14, pruning=False)
    assert optuna.trial.TrialState.PRUNED not in [t.state for t in unpruned.study.trials]


def test_a_time_budget_stops_the_trial_running_past_it_before_its_next_fold() -> None:
    folds = _folds()[:2]
    calls: list[int] = []

    def evaluate_fold(config: float, data: FoldData) -> tuple[float, None]:
        calls.append(data.fold.index)
        time.sleep(0.02 if len(calls) <= 2 else 0.4)  # the first trial is quick
        return config, None

    def suggest(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0.0, 1.0)

    study = optuna.create_study(direction="maximize")
    result = _run(study, evaluate_fold, suggest, folds, Budget(10, 0.3), False, "t", lambda _: None)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert second.state == optuna.trial.TrialState.PRUNED
    assert second.user_attrs["stopped"] == "time budget"
    assert calls == [1, 2, 1]  # the second trial never started its second fold
    assert result.fold_auprc == [first.params["x"]] * 2


def test_autoencoder_search_varies_size_epochs_and_learning_rate() -> None:
    folds = _folds(n=2_000)
    base = AutoencoderConfig(hidden_units=(8, 4, 8), max_epochs=3, batch_size=256)
    config = SearchConfig(
        seed=1, pruning=False, autoencoder=Budget(2, None), autoencoder_max_rows=500
    )
    result = search_autoencoder(folds, base, config, seed=0, threads=1, log=lambda _: None)
    trials = result.study.trials
    assert trials[0].params == {"width": 1.0, "learning_rate": base.learning_rate, "max_epochs": 3}
    assert len(trials) == 3
    for trial in trials:
        assert trial.params["width"] in (0.5, 1.0, 2.0)
        assert 1 <= trial.params["max_epochs"] <= 3
    # The kept configuration fits the full row cap, not the search's.
    assert result.config.max_train_rows == base.max_train_rows
    assert result.config.hidden_units == tuple(
        max(2, round(u * result.study.best_params["width"])) for u in base.hidden_units
    )
    assert [m.report["train_rows"] <= 500 for m in result.members] == [True, True]
    assert replace(result.config, max_train_rows=500) != result.config


@pytest.mark.parametrize("mode", ["on", "off"])
def test_a_monotone_business_rule_is_kept_not_searched(mode: str) -> None:
    config = SearchConfig(seed=3, classifier=Budget(2, None))
    base = replace(BASE, monotone=mode)
    result = search_classifier(_folds(), FEATURES, base, config, 0, 1, log=lambda _: None)
    assert all("monotone" not in t.params for t in result.study.trials)
    expected = ("log_amount",) if mode == "on" else ()
    assert result.config.monotone_increasing == expected
    assert result.config.monotone == mode
