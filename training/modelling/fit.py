"""Fitting the ensemble: the ``train`` section's configuration and :func:`train_ensemble`.

On the rows before the test gap (the *training time*), :func:`train_ensemble` builds the
prequential time folds, searches each member's hyperparameters on them (Optuna), chooses
the fusion among candidates that include each member alone, compares the calibration
methods, fits the calibrator and the cost-based tiers on the folds' out-of-fold window
scores, then refits both members on all training time. It returns the TensorFlow-free
:class:`~fraud_model.bundle.ModelBundle`. The ``train`` stage and ``training.external``
run the whole search; the ``poisoning`` and ``velocity_gain`` studies fix the members to
what ``train`` chose and keep one window (:meth:`TrainConfig.for_study`). Stages import
this module; it imports no stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.request_features import new_entity_default
from fraud_model.bundle import ModelBundle
from fraud_model.calibration import Calibrator
from fraud_model.decisions import Tiers
from fraud_model.fusion import Fusion
from fraud_model.scorer import EnsembleScorer
from training.inputs.frames import Frame, available_cores
from training.modelling.autoencoder import AutoencoderConfig, fit_member, keras_reconstruct
from training.modelling.classifier import ClassifierConfig, refit_classifier
from training.modelling.decision import CostModel, decision_cost, optimise_tiers
from training.modelling.defense import DefenseConfig, confident_learning
from training.modelling.ensemble import WindowScores, choose_calibration, choose_fusion
from training.modelling.folds import FoldConfig, prequential_folds
from training.modelling.metrics import rounded
from training.modelling.search import (
    Budget,
    FoldData,
    SearchConfig,
    SearchResult,
    search_autoencoder,
    search_classifier,
)

NO_SEARCH = Budget(trials=0, timeout_seconds=None)
Log = Callable[[str], None]


@dataclass(frozen=True)
class DecisionConfig:
    tiers: Tiers = field(default_factory=Tiers)
    optimise: bool = True
    alert_budget_per_day: float = 100.0
    cost: CostModel = field(default_factory=CostModel)


@dataclass(frozen=True)
class TrainConfig:
    """``params.yaml`` section ``train``."""

    seed: int = 13
    selection: FoldConfig = field(default_factory=FoldConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    fusion: str = "auto"
    ae_weight: float = 0.4
    weight_grid_step: float = 0.05
    defense: DefenseConfig = field(default_factory=DefenseConfig)
    calibration: str = "auto"
    decision: DecisionConfig = field(default_factory=DecisionConfig)

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> TrainConfig:
        decision = section["decision"]
        return cls(
            seed=section["seed"],
            selection=FoldConfig(**section["selection"]),
            search=SearchConfig.from_params(section["search"]),
            autoencoder=autoencoder_config(section["autoencoder"]),
            classifier=classifier_config(section["classifier"]),
            fusion=section["ensemble"]["method"],
            ae_weight=section["ensemble"]["ae_weight"],
            weight_grid_step=section["ensemble"]["grid_step"],
            defense=DefenseConfig(**section["defense"]),
            calibration=section["calibration"]["method"],
            decision=DecisionConfig(
                tiers=Tiers(**decision["tiers"]),
                optimise=decision["optimise"],
                alert_budget_per_day=decision["alert_budget_per_day"],
                cost=CostModel(**decision["cost"]),
            ),
        )

    def for_study(self, report: dict[str, Any], window_days: float) -> TrainConfig:
        """The members ``train`` chose (``report``: its ``metrics/train.json``), no search,
        and one window of ``window_days`` right after the training rows: the protocol of the
        studies that train many variants (poisoning, velocity gain)."""
        return replace(
            self,
            selection=FoldConfig(folds=1, window_days=window_days, gap_days=0, refit=False),
            search=replace(
                self.search, classifier=NO_SEARCH, autoencoder=NO_SEARCH, autoencoder_max_rows=None
            ),
            classifier=classifier_config(report["classifier"]["config"]),
            autoencoder=autoencoder_config(report["autoencoder"]["config"]),
        )


def autoencoder_config(values: dict[str, Any]) -> AutoencoderConfig:
    return AutoencoderConfig(**{**values, "hidden_units": tuple(values["hidden_units"])})


def classifier_config(values: dict[str, Any]) -> ClassifierConfig:
    return ClassifierConfig(
        **{
            **values,
            "imbalance": tuple(values["imbalance"]),
            "monotone_increasing": tuple(values.get("monotone_increasing", ())),
        }
    )


@dataclass
class TrainResult:
    bundle: ModelBundle
    report: dict[str, Any]
    keras_model: Any
    flagged: pd.DataFrame | None = None
    studies: dict[str, SearchResult] = field(default_factory=dict)


def fill_values(features: list[str]) -> np.ndarray:
    """What a missing feature becomes: the documented new-entity default."""
    return np.array([new_entity_default(name) for name in features], dtype=np.float64)


def _strategy_comparison(result: SearchResult, key: str) -> dict[str, float]:
    """The best mean fold AUPRC each value of a categorical choice reached."""
    best: dict[str, float] = {}
    for trial in result.study.trials:
        if trial.value is not None and key in trial.params:
            name = str(trial.params[key])
            best[name] = max(best.get(name, -np.inf), float(trial.value))
    return best


@dataclass
class _Defended:
    """The rows members may train on, after the optional label-noise defense."""

    trainable: np.ndarray
    flagged: pd.DataFrame | None = None
    report: dict[str, Any] | None = None


def _defend(
    dev: Frame, x: np.ndarray, pool: np.ndarray, config: TrainConfig, threads: int, log: Log
) -> _Defended:
    """Leave the labels the defense flags (among ``pool``) out of every training set."""
    trainable = pool.copy()
    if not config.defense.enabled:
        return _Defended(trainable)
    log(f"defense: {config.defense.method} over {config.defense.folds} folds")
    found = confident_learning(x[pool], dev.y[pool], config.defense, config.seed, threads)
    rows = np.flatnonzero(pool)[found.flagged]
    trainable[rows] = False
    log(f"defense: flagged {len(rows):,} of {int(pool.sum()):,} labels")
    flagged = dev.meta.iloc[rows].assign(
        label=dev.y[rows], oof_fraud_probability=found.oof_probability[found.flagged]
    )
    report = {
        "flagged": len(rows),
        "estimated_errors": found.estimated_errors,
        "thresholds": found.thresholds,
        "oof_auprc": found.oof_auprc,
    }
    return _Defended(trainable, flagged, report)


def _out_of_fold(
    dev: Frame,
    features: list[str],
    fills: np.ndarray,
    fold_data: list[FoldData],
    ae_search: SearchResult,
    clf_search: SearchResult,
    config: TrainConfig,
    threads: int,
) -> list[WindowScores]:
    """Each window scored by its fold's best members, through the service's scorer."""
    windows = []
    for data, ae, clf in zip(fold_data, ae_search.members, clf_search.members, strict=True):
        draft = ModelBundle(
            features=tuple(features),
            fill_values=fills,
            standardizer=ae.standardizer,
            autoencoder=ae.autoencoder,
            anomaly=ae.anomaly,
            classifier=clf.booster,
            fusion=Fusion("weighted", ae_weight=0.0),
            calibrator=Calibrator("identity", np.zeros(0), np.zeros(0)),
            tiers=config.decision.tiers,
        )
        batch = EnsembleScorer(draft, threads).score(dev.x[data.fold.window])
        windows.append(
            WindowScores(batch.clf_margin, batch.ae_score, batch.ae_error, data.y_window)
        )
    return windows


def _choose_tiers(
    probability: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    n_days: int,
    decision: DecisionConfig,
    log: Log,
) -> tuple[Tiers, dict[str, Any]]:
    """The tiers with the least expected cost on the pooled windows, and their costs."""
    if decision.optimise:
        tiers, report = optimise_tiers(
            probability, y, amount, n_days, decision.cost, decision.alert_budget_per_day
        )
    else:
        tiers, report = decision.tiers, {}
    default_cost = decision_cost(decision.tiers.level_index(probability), y, amount, decision.cost)
    chosen_cost = decision_cost(tiers.level_index(probability), y, amount, decision.cost)
    approve_all = float(amount[y == 1].sum())
    log(
        f"decision: tiers {tiers.to_dict()}; out-of-fold cost {chosen_cost:,.0f} "
        f"(default tiers {default_cost:,.0f}, approve-all {approve_all:,.0f})"
    )
    return tiers, {
        "tiers": tiers.to_dict(),
        "optimised": decision.optimise,
        "out_of_fold_days": n_days,
        "validation_cost": chosen_cost,
        "validation_cost_default_tiers": default_cost,
        "validation_approve_all_cost": approve_all,
        **report,
    }


def train_ensemble(
    dev: Frame,
    features: list[str],
    config: TrainConfig,
    threads: int | None = None,
    metadata: dict[str, Any] | None = None,
    log: Log = print,
) -> TrainResult:
    """Search, select and fit the whole ensemble on ``dev`` (every row before the test
    gap, in time order); returns the bundle and a report of every choice."""
    threads = threads or available_cores()
    started = time.perf_counter()
    fills = fill_values(features)
    x = np.where(np.isfinite(dev.x), dev.x, fills)
    y = dev.y
    folds = prequential_folds(dev.meta["timestamp"], y, config.selection)
    report: dict[str, Any] = {
        "rows": {"training_time": len(dev)},
        "selection": {**asdict(config.selection), "folds": [f.describe(y) for f in folds]},
    }
    for f in report["selection"]["folds"]:
        log(
            f"fold {f['fold']}: train {f['train_rows']:,} rows ({f['train_fraud']:,} fraud) "
            f"before {f['train_end'][:16]}, window {f['window_start'][:16]} to "
            f"{f['window_end'][:16]} ({f['window_rows']:,} rows, {f['window_fraud']:,} fraud)"
        )
    # The rows any member trains on: all training time, or the last fold's training rows.
    pool = np.ones(len(dev), bool) if config.selection.refit else folds[-1].train.copy()
    defended = _defend(dev, x, pool, config, threads, log)
    trainable = defended.trainable
    if defended.report is not None:
        report["defense"] = defended.report

    fold_data = [
        FoldData(f, x[f.train & trainable], y[f.train & trainable], x[f.window], y[f.window])
        for f in folds
    ]
    ae_search = search_autoencoder(
        fold_data, config.autoencoder, config.search, config.seed, threads, log
    )
    clf_search = search_classifier(
        fold_data, features, config.classifier, config.search, config.seed, threads, log
    )
    ae_config: AutoencoderConfig = ae_search.config
    clf_config: ClassifierConfig = clf_search.config
    log(
        f"search: autoencoder {ae_search.study.best_params}, "
        f"classifier {clf_search.study.best_params}"
    )

    windows = _out_of_fold(dev, features, fills, fold_data, ae_search, clf_search, config, threads)
    fusion, fusion_report = choose_fusion(
        windows, config.fusion, config.ae_weight, config.weight_grid_step
    )
    log(
        "ensemble: mean fold AUPRC "
        + ", ".join(f"{k} {v['mean']:.4f}" for k, v in fusion_report["candidates"].items())
        + f"; kept {fusion_report['chosen']}"
    )
    calibrator, calibration_report = choose_calibration(
        [w.fused(fusion) for w in windows], [w.y for w in windows], config.calibration
    )
    pooled = WindowScores.pooled(windows)
    in_windows = np.concatenate([f.window.nonzero()[0] for f in folds])
    tiers, decision_report = _choose_tiers(
        calibrator(pooled.fused(fusion)),
        pooled.y,
        dev.meta["amount"].to_numpy(dtype=np.float64)[in_windows],
        max(1, len(np.unique(dev.days[in_windows]))),
        config.decision,
        log,
    )

    if config.selection.refit:
        rounds = int(round(np.mean([m.best_iteration for m in clf_search.members])))
        log(f"refit: both members on {int(trainable.sum()):,} rows of training time")
        method = clf_config.imbalance[0]
        booster = refit_classifier(
            method, x[trainable], y[trainable], clf_config, rounds, config.seed, threads, features
        )
        ae = fit_member(x[trainable & (y == 0)], ae_config, config.seed, threads)
    else:
        booster, ae = clf_search.members[-1].booster, ae_search.members[-1]
        rounds = clf_search.members[-1].best_iteration

    candidates = fusion_report["candidates"]
    validation = {
        "ae": candidates["autoencoder_only"]["mean"],
        "classifier": candidates["classifier_only"]["mean"],
        "ensemble": candidates[fusion_report["chosen"]]["mean"],
    }
    report["rows"]["refit"] = int(trainable.sum()) if config.selection.refit else 0
    report.update(
        {
            "search": {
                "seed": config.search.seed,
                "pruning": config.search.pruning,
                "autoencoder": ae_search.summary(config.search.autoencoder),
                "classifier": clf_search.summary(config.search.classifier),
            },
            "autoencoder": {"config": asdict(ae_config), "final": ae.report},
            "classifier": {
                "selected": clf_config.imbalance[0],
                "monotone": bool(clf_config.monotone_increasing),
                "monotone_mode": config.classifier.monotone,
                "rounds": rounds,
                "config": asdict(clf_config),
                "imbalance_comparison": _strategy_comparison(clf_search, "imbalance"),
                "monotone_comparison": _strategy_comparison(clf_search, "monotone"),
            },
            "ensemble": fusion_report,
            "calibration": calibration_report,
            "decision": decision_report,
            "validation": validation,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    bundle = ModelBundle(
        features=tuple(features),
        fill_values=fills,
        standardizer=ae.standardizer,
        autoencoder=ae.autoencoder,
        anomaly=ae.anomaly,
        classifier=booster,
        fusion=fusion,
        calibrator=calibrator,
        tiers=tiers,
        metadata={
            **(metadata or {}),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features_from": (metadata or {}).get("feature_service", "custom"),
            "imbalance_method": clf_config.imbalance[0],
            "monotone_constraints": list(clf_config.monotone_increasing),
            "fusion_candidate": fusion_report["chosen"],
            "cost_model": config.decision.cost.as_dict(),
            "alert_budget_per_day": config.decision.alert_budget_per_day,
            "defense": config.defense.enabled,
            "validation": rounded(validation),
            "rows": report["rows"],
        },
    )
    studies = {"autoencoder": ae_search, "classifier": clf_search}
    return TrainResult(bundle, rounded(report), ae.keras_model, defended.flagged, studies)


def keras_parity(result: TrainResult, frame: Frame, rows: int = 2000) -> float:
    """Max abs difference between Keras's and the bundle's reconstructions on a sample."""
    scorer = EnsembleScorer(result.bundle)
    filled, _ = scorer.impute(frame.x[:rows])
    # Both runtimes get the same float32 inputs, so only arithmetic differences remain.
    standardised = result.bundle.standardizer.transform(filled).astype(np.float32)
    reference = keras_reconstruct(result.keras_model, standardised)
    ours = result.bundle.autoencoder.reconstruct(standardised)
    return float(np.max(np.abs(reference - ours)))


def data_version(root: Path = Path(".")) -> str:
    """The md5 that ``data.dvc`` records for the dataset directory."""
    import yaml

    path = root / "data.dvc"
    if not path.is_file():
        return "unversioned"
    return str(yaml.safe_load(path.read_text())["outs"][0]["md5"])
