"""Model-card inputs in miniature, shaped like the real metrics files and plots: shared by
the model_card stage's tests and the dashboard's (which build a card for the tiny bundle)."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from training import model_card

VERSION_KEY = "bundle_version"
SHAP_PLOTS = [
    "autoencoder_errors.png",
    "bar.png",
    "beeswarm.png",
    "dependence_home_distance_km.png",
    "local_caught_fraud.png",
]


def png(width: int = 2, height: int = 1) -> bytes:
    """A valid, tiny grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        model_card.PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def evaluation(rows: int, auprc: float, scenarios: dict[str, float]) -> dict[str, Any]:
    return {
        "alerts": 220,
        "alerts_per_day": 9.56522,
        "approve_all_cost": 36703.34,
        "auprc": auprc,
        "brier": 0.00484,
        "brier_uncalibrated": 0.00473,
        "card_precision_at_k": 0.40826,
        "cost": 5642.473,
        "cost_saving": 0.84626,
        "days": 23,
        "decisions": {"approve": rows - 220, "decline": 117, "review": 65, "step_up": 38},
        "ece": 0.00137,
        "ece_default_fusion": 0.1945,
        "ece_uncalibrated": 0.00105,
        "f1": 0.69357,
        "fraud": 151,
        "k": 10,
        "members": {"ae_auprc": 0.36822, "classifier_auprc": 0.84316},
        "precision": 0.58485,
        "precision_at_k": 0.56,
        "recall": 0.85195,
        "recall_at_k": 0.85129,
        "recall_by_scenario": scenarios,
        "roc_auc": 0.95826,
        "rows": rows,
    }


def bundle_spec() -> dict[str, Any]:
    return {
        "calibration": {"method": "isotonic", "x": [0.0, 1.0], "y": [0.0, 1.0]},
        "ensemble": {"method": "stacking", "ae_weight": 0.4},
        "features": ["home_distance_km", "terminal_fraud_risk_7d", "log_amount"],
        "format_version": 1,
        "metadata": {
            "alert_budget_per_day": 100,
            "cost_model": {
                "decline_friction": 30.0,
                "review": 3.0,
                "review_recovery": 0.7,
                "step_up_block": 0.9,
                "step_up_friction": 8.0,
            },
            "data_version": "19295a576abc48ce699e4502425d117a.dir",
            "defense": False,
            "feature_service": "fraud_detection_v2",
            "features_from": "fraud_detection_v2",
            "imbalance_method": "none",
            "labels": "clean",
            "rows": {"training_time": 222325, "refit": 222325},
            "trained_at": "2026-11-23T07:40:34+00:00",
            "validation": {"ae": 0.4178, "classifier": 0.85926, "ensemble": 0.85979},
        },
        "tiers": {"critical": 0.51, "high": 0.11, "medium": 0.05},
    }


def write_bundle(directory: Path, spec: dict[str, Any]) -> str:
    """bundle.json and MANIFEST.json as fraud_model.bundle.write_bundle writes them
    (the weights are not read by the card); returns the served version."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bundle.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    files = {"bundle.json": hashlib.sha256((directory / "bundle.json").read_bytes()).hexdigest()}
    files |= {"autoencoder.npz": "0" * 64, "classifier.txt": "1" * 64}
    manifest = {"format_version": 1, "files": files}
    (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return hashlib.sha256((directory / "MANIFEST.json").read_bytes()).hexdigest()[:12]


def poisoning_rows() -> dict[str, dict[str, Any]]:
    rows = {}
    for labels, model, rate, auprc in (
        ("clean", None, 0.0, 0.8428),
        ("v0_train_uniform_20pct", "uniform", 0.2, 0.8039),
        ("v0_train_hidden_fraud_20pct", "hidden_fraud", 0.2, 0.8314),
    ):
        for defense in (False, True):
            rows[f"{labels}/defense_{'on' if defense else 'off'}"] = {
                "auprc": round(auprc - 0.01 * defense, 4),
                "defense": defense,
                "f1_at_alert_tier": 0.6865,
                "flip_model": model,
                "flipped_labels": int(rate * 1000),
                "labels": labels,
                "precision_at_alert_tier": 0.573,
                "rate": rate,
                "recall_at_alert_tier": 0.8559,
                "recall_at_budget": 0.8526,
                "seconds": 26.1,
                **(
                    {"flagged": 466, "flagged_precision": 0.25, "flagged_recall": 0.5}
                    if defense
                    else {}
                ),
            }
    return rows


def fairness_attribute(groups: list[str], dpd: float, eod: float, plot: str) -> dict[str, Any]:
    return {
        "dpd": dpd,
        "dpd_all_groups": dpd,
        "eod": eod,
        "eod_all_groups": eod,
        "gated_groups": groups,
        "groups": [
            {
                "alert_rate": 0.024,
                "fnr": 0.15,
                "fpr": 0.01,
                "frauds": 300,
                "gated": True,
                "group": g,
                "precision": 0.6,
                "rows": 20000,
            }
            for g in groups
        ],
        "judged": True,
        "passed": True,
        "plot": plot,
        "violations": [],
    }


def fold(n: int, train_rows: int, train_fraud: int, window_fraud: int) -> dict[str, Any]:
    start = f"2025-02-{7 + 5 * (n - 1):02d}T00:00:00+00:00"
    return {
        "fold": n,
        "train_rows": train_rows,
        "train_fraud": train_fraud,
        "train_end": f"2025-01-{24 + 5 * n:02d}T00:00:00+00:00",
        "window_start": start,
        "window_end": f"2025-02-{12 + 5 * (n - 1):02d}T00:00:00+00:00",
        "window_rows": 1512 - n,
        "window_fraud": window_fraud,
    }


def search_summary(trials: int, pruned: int, best: float, seconds: float) -> dict[str, Any]:
    return {
        "trials": trials,
        "complete": trials - pruned,
        "pruned": pruned,
        "budget": {"trials": trials - 4, "timeout_seconds": 300.0},
        "best_trial": 3,
        "best_params": {"learning_rate": 0.05},
        "best_value": best,
        "best_fold_auprc": [best - 0.1, best + 0.1],
        "best_fold_std": 0.1,
        "seconds": seconds,
    }


def train_choices() -> dict[str, Any]:
    """train_ensemble's report of how it chose (training/modelling/fit.py), in miniature."""
    candidates = {
        "classifier_only": {"folds": [0.56897, 0.86435], "mean": 0.71666, "std": 0.14769},
        "weighted": {"folds": [0.56377, 0.86474], "mean": 0.71426, "std": 0.15048},
        "stacking": {"folds": [0.6, 0.87], "mean": 0.735, "std": 0.135},
        "autoencoder_only": {"folds": [0.39605, 0.54071], "mean": 0.46838, "std": 0.07233},
    }
    return {
        "selection": {
            "folds": [fold(1, 5428, 64, 22), fold(2, 6968, 98, 27)],
            "window_days": 5,
            "gap_days": 7,
            "refit": True,
        },
        "search": {
            "seed": 17,
            "pruning": True,
            "classifier": search_summary(24, 5, 0.73112, 412.3),
            "autoencoder": search_summary(4, 1, 0.50434, 96.1),
        },
        "classifier": {
            "selected": "smote",
            "monotone": False,
            "rounds": 38,
            "imbalance_comparison": {
                "none": 0.71666,
                "scale_pos_weight": 0.61251,
                "focal": 0.62181,
                "smote": 0.73112,
            },
            "monotone_comparison": {"True": 0.70101, "False": 0.73112},
        },
        "ensemble": {
            "chosen": "stacking",
            "candidates": candidates,
            "ablation": {
                "with_autoencoder": 0.735,
                "without_autoencoder": 0.71666,
                "autoencoder_only": 0.46838,
                "autoencoder_gain": 0.01834,
            },
        },
        "calibration": {
            "method": "auto",
            "chosen": "platt",
            "brier": {
                "isotonic": {"folds": [0.00901, 0.00757], "mean": 0.00829, "std": 0.00072},
                "platt": {"folds": [0.00898, 0.00577], "mean": 0.00737, "std": 0.0016},
            },
        },
    }


def ablation_of(kept: float, classifier: float, ae: float) -> dict[str, Any]:
    return {
        "kept": {"auprc": kept, "roc_auc": 0.95826},
        "classifier_only": {"auprc": classifier, "roc_auc": 0.95},
        "autoencoder_only": {"auprc": ae, "roc_auc": 0.81},
        "gain_over_classifier": {"auprc": round(kept - classifier, 5), "roc_auc": 0.00826},
    }


def metrics_files(version: str) -> dict[str, dict[str, Any]]:
    """Every metrics file the card reads, in the real files' shapes."""
    global_shap = [
        {"feature": f"feature_{i:02d}", "mean_abs_shap": round(1.0 / (i + 1), 6)} for i in range(12)
    ]
    global_shap[0]["feature"] = "home_distance_km"
    return {
        "evaluate": {
            VERSION_KEY: version,
            "test": evaluation(9155, 0.8425, {"account_takeover": 1.0, "large_amount": 0.67411}),
            "drifted_v1": evaluation(19949, 0.74632, {"card_testing": 0.97059}),
            "ablation": {
                "test": ablation_of(0.8425, 0.84316, 0.36822),
                "drifted_v1": ablation_of(0.74632, 0.7401, 0.3),
            },
        },
        "train": {
            VERSION_KEY: version,
            **train_choices(),
            "decision": {
                "alerts_per_day": 95.14286,
                "approve_all_cost": 194898.57,
                "cost": 21793.14,
                "optimised": True,
                "tiers": {"critical": 0.51, "high": 0.11, "medium": 0.05},
                "validation_approve_all_cost": 194898.57,
                "validation_cost": 21793.14,
                "validation_cost_default_tiers": 47872.519,
            },
        },
        "shap": {
            VERSION_KEY: version,
            "autoencoder": [
                {
                    "feature": "is_cross_border",
                    "fraud_mean_error": 0.215372,
                    "legit_mean_error": 0.00312496,
                    "ratio": 68.92,
                }
            ],
            "base_value": -6.05247,
            "dependence": ["home_distance_km"],
            "global": global_shap,
            "local": [
                {
                    "amount": 65.3,
                    "case": "caught_fraud",
                    "decision": "decline",
                    "is_fraud": True,
                    "plot": "local_caught_fraud.png",
                    "probability": 1.0,
                    "risk_level": "CRITICAL",
                    "top": [{"feature": "terminal_fraud_risk_7d", "shap": 4.9534, "value": 1.0}],
                    "transaction_id": "TX0000324275",
                }
            ],
            "missing_cases": [],
            "plots": SHAP_PLOTS,
            "reason_method": "path",
            "sample_frauds": 1000,
            "sample_rows": 2000,
        },
        "fairness": {
            VERSION_KEY: version,
            "alert_threshold": 0.05,
            "attributes": {
                "age_band": fairness_attribute(["18-25", "26-40"], 0.00452171, 0.0594468, "a.png"),
                "gender": fairness_attribute(["female", "male"], 0.000152468, 0.0333791, "g.png"),
            },
            "limits": {
                "max_demographic_parity_difference": 0.01,
                "max_equalized_odds_difference": 0.1,
                "min_group_frauds": 30,
                "min_group_rows": 500,
            },
            "passed": True,
            "violations": [],
        },
        "drift": {
            VERSION_KEY: version,
            "alert_rate": {"current": 0.031945, "reference": 0.0240719},
            "features": {
                "alert": True,
                "drift_share": 0.6667,
                "drifted": ["home_distance_km", "log_amount"],
                "features": [
                    {"feature": name, "drifted": name != "terminal_fraud_risk_7d", "psi": 0.1}
                    for name in ("home_distance_km", "terminal_fraud_risk_7d", "log_amount")
                ],
                "max_drift_share": 0.3,
            },
            "plots": ["psi.png", "scores.png"],
            "predictions": [
                {"drifted": True, "feature": "probability", "ks_statistic": 0.05271, "psi": 0.03}
            ],
        },
        "poisoning": poisoning_rows(),
    }


GATE = {
    "run_id": "9e6937c4ab084753a0412dedf89b0a62",
    "model_name": "fraud-ensemble",
    "version": "6",
    "champion_before": "4",
    "promoted": True,
    "reason": "challenger AUPRC 0.8425 vs champion 0.8423 (tolerance 0.01): passes",
}


def write_inputs(root: Path, version: str) -> None:
    """``root/metrics`` (gate included) and ``root/reports`` for a bundle of ``version``."""
    metrics = root / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    for name, payload in metrics_files(version).items():
        (metrics / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
    (metrics / "gate.json").write_text(json.dumps({**GATE, VERSION_KEY: version}, indent=2))
    reports = root / "reports"
    plots = [f"shap/{n}" for n in SHAP_PLOTS]
    plots += ["fairness/a.png", "fairness/g.png", "drift/psi.png", "drift/scores.png"]
    for i, plot in enumerate([*plots, "poisoning.png"]):
        (reports / plot).parent.mkdir(parents=True, exist_ok=True)
        (reports / plot).write_bytes(png(width=i + 1))
    (reports / "shap/not_listed.png").write_bytes(png())
    (reports / "report.html").write_text("<!doctype html><title>Model audit</title>\n")
