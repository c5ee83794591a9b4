"""Fitting the ensemble: the ``train`` section's configuration and :func:`train_ensemble`.

Fits the autoencoder and the LightGBM member on the train part, then tunes everything
(early stopping, imbalance strategy, fusion weight, calibration, tiers) on the validation
part, and returns the TensorFlow-free :class:`~fraud_model.bundle.ModelBundle`. The
``train`` stage runs it on v0; the ``poisoning`` and ``velocity_gain`` studies and
``training.external`` run it on their own rows. Stages import this module; it imports no
stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.request_features import new_entity_default
from fraud_model.autoencoder import AnomalyNormalizer, Standardizer
from fraud_model.bundle import ModelBundle
from fraud_model.calibration import Calibrator
from fraud_model.decisions import Tiers
from fraud_model.fusion import Fusion
from fraud_model.scorer import EnsembleScorer
from training.inputs.frames import Frame, available_cores
from training.modelling.autoencoder import (
    AutoencoderConfig,
    export_autoencoder,
    fit_autoencoder,
    keras_reconstruct,
)
from training.modelling.classifier import ClassifierConfig, select_classifier
from training.modelling.decision import CostModel, decision_cost, optimise_tiers
from training.modelling.defense import DefenseConfig, confident_learning
from training.modelling.ensemble import choose_fusion, fit_calibrator
from training.modelling.metrics import ranking, rounded


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
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    fusion: str = "auto"
    ae_weight: float = 0.4
    weight_grid_step: float = 0.05
    defense: DefenseConfig = field(default_factory=DefenseConfig)
    calibration: str = "isotonic"
    decision: DecisionConfig = field(default_factory=DecisionConfig)

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> TrainConfig:
        ae = dict(section["autoencoder"])
        ae["hidden_units"] = tuple(ae["hidden_units"])
        clf = dict(section["classifier"])
        clf["imbalance"] = tuple(clf["imbalance"])
        clf["monotone_increasing"] = tuple(clf.get("monotone_increasing", ()))
        decision = section["decision"]
        return cls(
            seed=section["seed"],
            autoencoder=AutoencoderConfig(**ae),
            classifier=ClassifierConfig(**clf),
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


@dataclass
class TrainResult:
    bundle: ModelBundle
    report: dict[str, Any]
    keras_model: Any
    flagged: pd.DataFrame | None = None


def fill_values(features: list[str]) -> np.ndarray:
    """What a missing feature becomes: the documented new-entity default."""
    return np.array([new_entity_default(name) for name in features], dtype=np.float64)


def train_ensemble(
    train: Frame,
    val: Frame,
    features: list[str],
    config: TrainConfig,
    threads: int | None = None,
    metadata: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fit the whole ensemble on ``train``, tune it on ``val``; returns the bundle."""
    threads = threads or available_cores()
    started = time.perf_counter()
    fills = fill_values(features)
    report: dict[str, Any] = {"rows": {"train": len(train), "validation": len(val)}}

    flagged_frame = None
    if config.defense.enabled:
        log(f"defense: {config.defense.method} over {config.defense.folds} folds")
        x_filled = np.where(np.isfinite(train.x), train.x, fills)
        result = confident_learning(x_filled, train.y, config.defense, config.seed, threads)
        flagged_frame = train.meta[result.flagged].assign(
            label=train.y[result.flagged],
            oof_fraud_probability=result.oof_probability[result.flagged],
        )
        report["defense"] = {
            "flagged": int(result.flagged.sum()),
            "estimated_errors": result.estimated_errors,
            "thresholds": result.thresholds,
            "oof_auprc": result.oof_auprc,
        }
        log(f"defense: flagged {int(result.flagged.sum()):,} of {len(train):,} labels")
        train = train.subset(~result.flagged)

    x_train = np.where(np.isfinite(train.x), train.x, fills)
    x_val = np.where(np.isfinite(val.x), val.x, fills)
    legit_train, legit_val = train.y == 0, val.y == 0

    log(f"autoencoder: {int(legit_train.sum()):,} legitimate rows, {len(features)} features")
    standardizer = Standardizer.fit(x_train[legit_train])
    keras_model, ae_report = fit_autoencoder(
        standardizer.transform(x_train[legit_train]),
        standardizer.transform(x_val[legit_val]),
        config.autoencoder,
        config.seed,
        threads,
    )
    log(
        f"autoencoder: {ae_report['epochs']} epochs (best {ae_report['best_epoch']}), "
        f"{ae_report['seconds']}s"
    )
    autoencoder = export_autoencoder(keras_model)

    log("classifier: comparing imbalance strategies")
    best, comparison = select_classifier(
        x_train, train.y, x_val, val.y, config.classifier, config.seed, threads, features, log
    )
    log(f"classifier: kept {best.method}")

    # The scorer itself computes every validation score, so tuning sees what serving sees.
    draft = ModelBundle(
        features=tuple(features),
        fill_values=fills,
        standardizer=standardizer,
        autoencoder=autoencoder,
        anomaly=AnomalyNormalizer(np.array([0.0, 1.0])),
        classifier=best.booster,
        fusion=Fusion("weighted", ae_weight=config.ae_weight),
        calibrator=Calibrator("identity", np.zeros(0), np.zeros(0)),
        tiers=config.decision.tiers,
    )
    val_errors = EnsembleScorer(draft, threads).autoencoder_errors(x_val).mean(axis=1)
    anomaly = AnomalyNormalizer.fit(val_errors[legit_val], config.autoencoder.score_quantiles)
    draft = replace(draft, anomaly=anomaly)
    scores = EnsembleScorer(draft, threads).score(val.x)

    fusion, fusion_report = choose_fusion(
        scores, val.y, config.fusion, config.ae_weight, config.weight_grid_step
    )
    log(
        "ensemble: validation AUPRC "
        + ", ".join(f"{k} {v:.4f}" for k, v in fusion_report["validation_auprc"].items())
        + f"; kept {fusion_report['chosen']}"
    )
    fused = fusion(scores.ae_score, scores.clf_margin, scores.ae_error)
    calibrator = fit_calibrator(fused, val.y, config.calibration)
    probability = calibrator(fused)

    amount = val.meta["amount"].to_numpy(dtype=np.float64)
    decision = config.decision
    if decision.optimise:
        tiers, tier_report = optimise_tiers(
            probability, val.y, amount, val.n_days, decision.cost, decision.alert_budget_per_day
        )
    else:
        tiers = decision.tiers
        tier_report = {}
    default_cost = decision_cost(
        decision.tiers.level_index(probability), val.y, amount, decision.cost
    )
    chosen_cost = decision_cost(tiers.level_index(probability), val.y, amount, decision.cost)
    log(
        f"decision: tiers {tiers.to_dict()}; validation cost {chosen_cost:,.0f} "
        f"(default tiers {default_cost:,.0f}, approve-all {float(amount[val.y == 1].sum()):,.0f})"
    )

    report.update(
        {
            "autoencoder": ae_report,
            "classifier": {"selected": best.method, "comparison": comparison},
            "ensemble": fusion_report,
            "calibration": {"method": config.calibration},
            "decision": {
                "tiers": tiers.to_dict(),
                "optimised": decision.optimise,
                "validation_cost": chosen_cost,
                "validation_cost_default_tiers": default_cost,
                "validation_approve_all_cost": float(amount[val.y == 1].sum()),
                **tier_report,
            },
            "validation": {
                "ae": ranking(val.y, scores.ae_score)["auprc"],
                "classifier": ranking(val.y, scores.clf_score)["auprc"],
                "ensemble": ranking(val.y, probability)["auprc"],
            },
        }
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    bundle = replace(
        draft,
        fusion=fusion,
        calibrator=calibrator,
        tiers=tiers,
        metadata={
            **(metadata or {}),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features_from": (metadata or {}).get("feature_service", "custom"),
            "imbalance_method": best.method,
            "cost_model": decision.cost.as_dict(),
            "alert_budget_per_day": decision.alert_budget_per_day,
            "defense": config.defense.enabled,
            "validation": rounded(report["validation"]),
            "rows": report["rows"],
        },
    )
    return TrainResult(bundle, rounded(report), keras_model, flagged_frame)


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
