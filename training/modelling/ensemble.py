"""Fusing the two members and calibrating the result, both fitted on validation (used by
:func:`training.modelling.fit.train_ensemble`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from fraud_model.calibration import Calibrator
from fraud_model.fusion import Fusion
from fraud_model.scorer import ScoreBatch

FUSION_METHODS = ("auto", "weighted", "stacking")


def _auprc(y: np.ndarray, fusion: Fusion, scores: ScoreBatch) -> float:
    fused = fusion(scores.ae_score, scores.clf_margin, scores.ae_error)
    return float(average_precision_score(y, fused))


def fit_stacking(scores: ScoreBatch, y: np.ndarray) -> Fusion:
    """Logistic regression on the classifier's log-odds and the log reconstruction error.

    A member with a negative weight would make a riskier-looking transaction (a larger
    amount: higher margin and error) score lower, so such a member is dropped and the
    regression refitted on the other: the fused score never decreases in either member.
    """
    inputs = np.column_stack([scores.clf_margin, np.log(scores.ae_error + 1e-12)])
    model = LogisticRegression(C=1.0, max_iter=1000).fit(inputs, y)
    coef = model.coef_[0]
    if coef.min() < 0:
        keep = int(np.argmax(coef))
        model = LogisticRegression(C=1.0, max_iter=1000).fit(inputs[:, [keep]], y)
        coef = np.zeros(2)
        coef[keep] = max(0.0, float(model.coef_[0, 0]))
    return Fusion(
        "stacking",
        coef_clf=float(coef[0]),
        coef_ae=float(coef[1]),
        intercept=float(model.intercept_[0]),
    )


def choose_fusion(
    scores: ScoreBatch,
    y: np.ndarray,
    method: str,
    default_weight: float,
    grid_step: float,
) -> tuple[Fusion, dict[str, Any]]:
    """The fusion used in the bundle, and validation AUPRC of every candidate on record.

    Candidates: the default weighted average, the best weight on a grid (0 = classifier
    alone, 1 = autoencoder alone), and stacking. ``method`` forces one kind; ``auto`` keeps
    the candidate with the best validation AUPRC.
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {FUSION_METHODS}")
    grid = sorted(
        set(np.round(np.arange(0.0, 1.0 + 1e-9, grid_step), 4).tolist())
        | {round(default_weight, 4)}
    )
    by_weight = {f"{w:.2f}": _auprc(y, Fusion("weighted", ae_weight=w), scores) for w in grid}
    best_weight = max(grid, key=lambda w: (by_weight[f"{w:.2f}"], -abs(w - default_weight)))
    candidates = {
        "weighted_default": Fusion("weighted", ae_weight=default_weight),
        "weighted_tuned": Fusion("weighted", ae_weight=float(best_weight)),
        "stacking": fit_stacking(scores, y),
    }
    auprc = {name: _auprc(y, fusion, scores) for name, fusion in candidates.items()}
    if method == "weighted":
        chosen = "weighted_tuned"
    elif method == "stacking":
        chosen = "stacking"
    else:
        chosen = max(auprc, key=lambda name: auprc[name])
    report = {
        "method": method,
        "chosen": chosen,
        "fusion": candidates[chosen].to_dict(),
        "validation_auprc": auprc,
        "validation_auprc_by_ae_weight": by_weight,
    }
    return candidates[chosen], report


def fit_calibrator(fused: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    """Isotonic regression or Platt scaling of the fused score on validation."""
    fused = np.clip(np.asarray(fused, dtype=np.float64), 0.0, 1.0)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(fused, y)
        x = np.concatenate([[0.0], iso.X_thresholds_, [1.0]])
        v = np.concatenate([[iso.y_thresholds_[0]], iso.y_thresholds_, [iso.y_thresholds_[-1]]])
        x, keep = np.unique(x, return_index=True)
        return Calibrator("isotonic", x, v[keep])
    if method == "platt":
        logit = np.log(np.clip(fused, 1e-9, 1 - 1e-9) / np.clip(1 - fused, 1e-9, 1.0))
        model = LogisticRegression(C=1e6).fit(logit.reshape(-1, 1), y)
        return Calibrator(
            "platt",
            np.zeros(0),
            np.zeros(0),
            slope=float(model.coef_[0, 0]),
            intercept=float(model.intercept_[0]),
        )
    raise ValueError(f"unknown calibration method {method!r}")
