"""Choosing how the members are fused and how the result is calibrated, on the time folds'
out-of-fold scores (used by :func:`training.modelling.fit.train_ensemble`).

The candidates include each member alone, so the kept model is never below its own parts
on the folds: "classifier only" (weight 0), "autoencoder only" (weight 1), the weighted
average at the best weight of a grid (a hyperparameter, judged like any other by its mean
over folds) and stacking. Stacking's coefficients are fitted, so each fold's value comes
from coefficients fitted on the other folds' windows (leave one fold out); with one fold
they are fitted and judged on the same window, which the report says.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from fraud_model.calibration import Calibrator
from fraud_model.fusion import Fusion

# Simplest first: on a tie the earlier candidate is kept.
CANDIDATES = ("classifier_only", "weighted", "stacking", "autoencoder_only")
FUSION_METHODS = ("auto", *CANDIDATES)
CALIBRATION_METHODS = ("auto", "isotonic", "platt")


class MemberScores(Protocol):
    @property
    def clf_margin(self) -> np.ndarray: ...

    @property
    def ae_error(self) -> np.ndarray: ...


@dataclass(frozen=True)
class WindowScores:
    """The scorer's outputs for one fold's window, from that fold's members."""

    clf_margin: np.ndarray
    ae_score: np.ndarray
    ae_error: np.ndarray
    y: np.ndarray

    @classmethod
    def pooled(cls, windows: list[WindowScores]) -> WindowScores:
        return cls(*(np.concatenate([getattr(w, f.name) for w in windows]) for f in fields(cls)))

    def fused(self, fusion: Fusion) -> np.ndarray:
        return fusion(self.ae_score, self.clf_margin, self.ae_error)


def fit_stacking(scores: MemberScores, y: np.ndarray) -> Fusion:
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


def _others(windows: list[WindowScores], k: int) -> WindowScores:
    """Every window but the ``k``-th, pooled (the ``k``-th itself when it is the only one)."""
    rest = [w for i, w in enumerate(windows) if i != k] or [windows[k]]
    return WindowScores.pooled(rest)


def _auprc(window: WindowScores, fusion: Fusion) -> float:
    return float(average_precision_score(window.y, window.fused(fusion)))


def _spread(values: list[float]) -> dict[str, Any]:
    return {"folds": values, "mean": float(np.mean(values)), "std": float(np.std(values))}


def choose_fusion(
    windows: list[WindowScores], method: str, default_weight: float, grid_step: float
) -> tuple[Fusion, dict[str, Any]]:
    """The fusion for the bundle, every candidate's window AUPRC per fold, and the
    autoencoder's ablation (the kept model with and without it)."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {FUSION_METHODS}")
    grid = [
        w
        for w in sorted(
            set(np.round(np.arange(0.0, 1.0 + 1e-9, grid_step), 4).tolist())
            | {round(default_weight, 4)}
        )
        if 0.0 < w < 1.0
    ]
    by_weight = {
        w: float(np.mean([_auprc(win, Fusion("weighted", ae_weight=w)) for win in windows]))
        for w in grid
    }
    weight = max(grid, key=lambda w: (by_weight[w], -abs(w - default_weight)))
    fixed = {
        "classifier_only": Fusion("weighted", ae_weight=0.0),
        "weighted": Fusion("weighted", ae_weight=float(weight)),
        "autoencoder_only": Fusion("weighted", ae_weight=1.0),
    }
    per_fold = {name: [_auprc(w, f) for w in windows] for name, f in fixed.items()}
    per_fold["stacking"] = [
        _auprc(w, fit_stacking(rest, rest.y))
        for k, w in enumerate(windows)
        for rest in [_others(windows, k)]
    ]
    candidates = {name: _spread(per_fold[name]) for name in CANDIDATES}
    if method == "auto":
        chosen = max(CANDIDATES, key=lambda n: (candidates[n]["mean"], -CANDIDATES.index(n)))
    else:
        chosen = method
    pooled = WindowScores.pooled(windows)
    fusion = fit_stacking(pooled, pooled.y) if chosen == "stacking" else fixed[chosen]
    kept = candidates[chosen]["mean"]
    report = {
        "method": method,
        "chosen": chosen,
        "fusion": fusion.to_dict(),
        "candidates": candidates,
        "stacking_in_sample": len(windows) == 1,
        "weighted_auprc_by_ae_weight": {f"{w:.2f}": round(v, 5) for w, v in by_weight.items()},
        "ablation": {
            "with_autoencoder": kept,
            "without_autoencoder": candidates["classifier_only"]["mean"],
            "autoencoder_only": candidates["autoencoder_only"]["mean"],
            "autoencoder_gain": kept - candidates["classifier_only"]["mean"],
        },
    }
    return fusion, report


def brier(y: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean((probability - y) ** 2))


def choose_calibration(
    fused: list[np.ndarray], ys: list[np.ndarray], method: str
) -> tuple[Calibrator, dict[str, Any]]:
    """Isotonic or Platt: with ``auto`` and several folds, the one with the lower mean
    Brier score on each window when fitted on the other windows; fitted on all windows."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}")
    compared: dict[str, Any] = {}
    if method == "auto" and len(fused) > 1:
        for name in ("isotonic", "platt"):
            values = []
            for k in range(len(fused)):
                rest = [i for i in range(len(fused)) if i != k]
                calibrator = fit_calibrator(
                    np.concatenate([fused[i] for i in rest]),
                    np.concatenate([ys[i] for i in rest]),
                    name,
                )
                values.append(brier(ys[k], calibrator(fused[k])))
            compared[name] = _spread(values)
        chosen = min(compared, key=lambda n: compared[n]["mean"])
    else:
        chosen = "isotonic" if method == "auto" else method
    calibrator = fit_calibrator(np.concatenate(fused), np.concatenate(ys), chosen)
    return calibrator, {"method": method, "chosen": chosen, "brier": compared}


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
