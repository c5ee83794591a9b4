"""Time-ordered hyperparameter search with Optuna, one study per member.

Every trial fits its member on each prequential fold (:mod:`training.modelling.folds`) and
scores the fold's window; the trial's value is the mean window AUPRC over folds, reported
fold by fold so the median pruner stops a trial that is already behind. The sampler is a
seeded TPE, so the same seed, data and trial budget give the same trials; a time budget
stops the study between trials (a shorter run is a prefix of a longer one). The
configuration in ``params.yaml`` is enqueued first (once per imbalance strategy for the
classifier), so the search never keeps anything worse on the folds than the fixed
configuration it replaces. Once one trial has completed, a trial still running when the
time budget runs out stops before its next fold (pruned, tagged ``stopped``), so the cap
holds on big data too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
from sklearn.metrics import average_precision_score

from training.modelling.autoencoder import AutoencoderConfig, AutoencoderMember, fit_member
from training.modelling.classifier import ClassifierConfig, FittedClassifier, fit_classifier
from training.modelling.folds import TimeFold

AE_WIDTHS = (0.5, 1.0, 2.0)  # multipliers of train.autoencoder.hidden_units


@dataclass(frozen=True)
class Budget:
    """Trials after the enqueued defaults, and a wall-clock cap on the whole study."""

    trials: int = 20
    timeout_seconds: float | None = 300.0


@dataclass(frozen=True)
class SearchConfig:
    """``params.yaml`` section ``train.search``."""

    seed: int = 17
    pruning: bool = True
    classifier: Budget = field(default_factory=Budget)
    autoencoder: Budget = field(default_factory=lambda: Budget(3, 120.0))
    # Legitimate rows an autoencoder trial fits on per fold (None: train.autoencoder's cap).
    autoencoder_max_rows: int | None = 20_000

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> SearchConfig:
        return cls(
            seed=section["seed"],
            pruning=section["pruning"],
            classifier=Budget(**section["classifier"]),
            autoencoder=Budget(**section["autoencoder"]),
            autoencoder_max_rows=section.get("autoencoder_max_rows"),
        )


@dataclass(frozen=True)
class FoldData:
    """One fold's imputed rows: what its members train on, and its window."""

    fold: TimeFold
    x_train: np.ndarray
    y_train: np.ndarray
    x_window: np.ndarray
    y_window: np.ndarray


@dataclass
class SearchResult:
    """A finished study, the configuration of its best trial, and that trial's members
    (one per fold, oldest first)."""

    study: optuna.Study
    config: Any
    members: list[Any]
    fold_auprc: list[float]
    seconds: float

    def summary(self, budget: Budget) -> dict[str, Any]:
        states = [t.state for t in self.study.trials]
        complete = optuna.trial.TrialState.COMPLETE
        best = self.study.best_trial
        return {
            "trials": len(states),
            "complete": states.count(complete),
            "pruned": states.count(optuna.trial.TrialState.PRUNED),
            "budget": {"trials": budget.trials, "timeout_seconds": budget.timeout_seconds},
            "best_trial": best.number,
            "best_params": best.params,
            "best_value": best.value,
            "best_fold_auprc": self.fold_auprc,
            "best_fold_std": float(np.std(self.fold_auprc)),
            "seconds": round(self.seconds, 1),
        }


def _study(seed: int, pruning: bool) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5) if pruning else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )


def _run(
    study: optuna.Study,
    evaluate_fold: Callable[[Any, FoldData], tuple[float, Any]],
    suggest: Callable[[optuna.Trial], Any],
    folds: list[FoldData],
    budget: Budget,
    pruning: bool,
    name: str,
    log: Callable[[str], None],
) -> SearchResult:
    """Optimise the mean window AUPRC over folds; keep the best trial's members."""
    started = time.perf_counter()
    best: dict[str, Any] = {"value": -np.inf}

    def over_budget() -> bool:
        limit = budget.timeout_seconds
        return limit is not None and time.perf_counter() - started > limit

    def objective(trial: optuna.Trial) -> float:
        config = suggest(trial)
        values: list[float] = []
        members = []
        for data in folds:
            # On big data one trial can outlast the whole budget: once a trial has
            # completed, a trial past the deadline stops before its next fold.
            if "config" in best and over_budget():
                trial.set_user_attr("stopped", "time budget")
                raise optuna.TrialPruned()
            value, member = evaluate_fold(config, data)
            values.append(value)
            members.append(member)
            trial.report(float(np.mean(values)), step=data.fold.index)
            if pruning and trial.should_prune():
                raise optuna.TrialPruned()
        mean = float(np.mean(values))
        trial.set_user_attr("fold_auprc", values)
        if mean > best["value"]:
            best.update(value=mean, config=config, members=members, values=values)
        log(
            f"  {name} trial {trial.number}: mean fold AUPRC {mean:.4f} "
            f"({', '.join(f'{v:.3f}' for v in values)}) {trial.params}"
        )
        return mean

    study.optimize(
        objective,
        n_trials=len(study.get_trials(deepcopy=False)) + budget.trials,
        timeout=budget.timeout_seconds,
    )
    if "config" not in best:
        raise RuntimeError(f"{name} search: no trial completed within its budget")
    return SearchResult(
        study, best["config"], best["members"], best["values"], time.perf_counter() - started
    )


def search_classifier(
    folds: list[FoldData],
    features: list[str],
    base: ClassifierConfig,
    search: SearchConfig,
    seed: int,
    threads: int,
    log: Callable[[str], None] = print,
) -> SearchResult:
    """LightGBM's hyperparameters, imbalance strategy and (``monotone: search``) whether the
    monotone constraints stay."""
    monotone = tuple(n for n in base.monotone_increasing if n in features)
    searched = bool(monotone) and base.monotone == "search"

    def suggest(trial: optuna.Trial) -> ClassifierConfig:
        method = trial.suggest_categorical("imbalance", list(base.imbalance))
        if searched:
            use_monotone = bool(trial.suggest_categorical("monotone", [True, False]))
        else:
            use_monotone = bool(monotone) and base.monotone == "on"
        return replace(
            base,
            imbalance=(method,),
            monotone="on" if use_monotone else "off",
            monotone_increasing=monotone if use_monotone else (),
            learning_rate=trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
            num_leaves=trial.suggest_int("num_leaves", 8, 128, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 5, 200, log=True),
            feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
            bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
            lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        )

    def evaluate_fold(config: ClassifierConfig, data: FoldData) -> tuple[float, FittedClassifier]:
        fitted = fit_classifier(
            config.imbalance[0],
            data.x_train,
            data.y_train,
            data.x_window,
            data.y_window,
            config,
            seed,
            threads,
            features,
        )
        return fitted.val_auprc, fitted

    study = _study(search.seed, search.pruning)
    for method in base.imbalance:
        study.enqueue_trial(
            {
                "imbalance": method,
                **({"monotone": True} if searched else {}),
                "learning_rate": base.learning_rate,
                "num_leaves": base.num_leaves,
                "min_child_samples": base.min_child_samples,
                "feature_fraction": base.feature_fraction,
                "bagging_fraction": base.bagging_fraction,
                "lambda_l2": base.lambda_l2,
            }
        )
    return _run(
        study, evaluate_fold, suggest, folds, search.classifier, search.pruning, "classifier", log
    )


def search_autoencoder(
    folds: list[FoldData],
    base: AutoencoderConfig,
    search: SearchConfig,
    seed: int,
    threads: int,
    log: Callable[[str], None] = print,
) -> SearchResult:
    """The autoencoder's width, learning rate and epoch cap, judged by how well its
    reconstruction error alone ranks each window's fraud."""
    rows = base.max_train_rows
    if search.autoencoder_max_rows is not None:
        rows = min(rows, search.autoencoder_max_rows)
    low_epochs = max(1, base.max_epochs // 3)

    def suggest(trial: optuna.Trial) -> AutoencoderConfig:
        width = trial.suggest_categorical("width", list(AE_WIDTHS))
        return replace(
            base,
            hidden_units=tuple(max(2, round(u * width)) for u in base.hidden_units),
            learning_rate=trial.suggest_float("learning_rate", 5e-4, 1e-2, log=True),
            max_epochs=trial.suggest_int("max_epochs", low_epochs, base.max_epochs),
            max_train_rows=rows,
        )

    def evaluate_fold(config: AutoencoderConfig, data: FoldData) -> tuple[float, AutoencoderMember]:
        member = fit_member(data.x_train[data.y_train == 0], config, seed, threads)
        value = float(average_precision_score(data.y_window, member.errors(data.x_window)))
        return value, member

    study = _study(search.seed, search.pruning)
    study.enqueue_trial(
        {"width": 1.0, "learning_rate": base.learning_rate, "max_epochs": base.max_epochs}
    )
    result = _run(
        study, evaluate_fold, suggest, folds, search.autoencoder, search.pruning, "autoencoder", log
    )
    # The final member fits on the full row cap, not the search's.
    result.config = replace(result.config, max_train_rows=base.max_train_rows)
    return result
