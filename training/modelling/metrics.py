"""Evaluation metrics for a time-ordered holdout: ranking, alerts, cost and calibration.

Shared by fitting (validation), the ``evaluate`` stage, the studies and the audits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)


def ranking(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUPRC (average precision) and ROC-AUC; NaN when a class is absent."""
    if y.min() == y.max():
        return {"auprc": float("nan"), "roc_auc": float("nan")}
    return {
        "auprc": float(average_precision_score(y, score)),
        "roc_auc": float(roc_auc_score(y, score)),
    }


def at_threshold(y: np.ndarray, alert: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of a set of alerts."""
    tp = float(np.sum(alert & (y == 1)))
    precision = tp / max(1.0, float(alert.sum()))
    recall = tp / max(1.0, float(y.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "alerts": int(alert.sum())}


def _daily_top(y: np.ndarray, score: np.ndarray, day: np.ndarray, k: int) -> pd.DataFrame:
    """The ``k`` highest-scored rows of every day: the alerts a team reviews."""
    frame = pd.DataFrame({"y": y, "score": score, "day": day})
    return frame.sort_values("score", ascending=False, kind="stable").groupby("day").head(k)


def daily_alerts(score: np.ndarray, day: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the rows among their day's ``k`` highest scores (the reviewed ones)."""
    alert = np.zeros(len(score), dtype=bool)
    alert[_daily_top(np.zeros(len(score)), score, day, k).index.to_numpy()] = True
    return alert


def precision_at_k(y: np.ndarray, score: np.ndarray, day: np.ndarray, k: int) -> float:
    """Mean over days of the fraud share among the day's ``k`` highest scores."""
    return float(_daily_top(y, score, day, k).groupby("day")["y"].mean().mean())


def card_precision_at_k(
    y: np.ndarray, score: np.ndarray, day: np.ndarray, card: np.ndarray, k: int
) -> float:
    """Mean over days of the share of compromised cards among the day's ``k`` riskiest cards
    (a card's daily risk is its highest score; it is compromised if any of its
    transactions that day is fraud). Analysts review cards, not transactions."""
    frame = pd.DataFrame({"y": y, "score": score, "day": day, "card": card})
    cards = frame.groupby(["day", "card"], sort=False).agg(score=("score", "max"), y=("y", "max"))
    top = cards.sort_values("score", ascending=False, kind="stable").groupby(level="day").head(k)
    return float(top.groupby(level="day")["y"].mean().mean())


def recall_at_budget(y: np.ndarray, score: np.ndarray, day: np.ndarray, k: int) -> float:
    """Share of all fraud caught when analysts review the top ``k`` per day."""
    return float(_daily_top(y, score, day, k)["y"].sum() / max(1, int(y.sum())))


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Equal-width-bin ECE: the bin-weighted gap between mean probability and fraud rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(prob, edges[1:-1], right=False), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(prob[members].mean() - y[members].mean())
    return float(total)


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    return float(np.mean((prob - y) ** 2))


def calibration_curve(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted probability vs observed fraud rate per equal-mass bin."""
    order = np.argsort(prob, kind="stable")
    rows = []
    for chunk in np.array_split(order, bins):
        if chunk.size:
            rows.append(
                {
                    "predicted": float(prob[chunk].mean()),
                    "observed": float(y[chunk].mean()),
                    "n": int(chunk.size),
                }
            )
    return rows


def curve_points(
    y: np.ndarray, score: np.ndarray, max_points: int = 400
) -> dict[str, list[dict[str, float]]]:
    """PR and ROC curves, thinned to at most ``max_points`` points each (for DVC plots)."""
    precision, recall, _ = precision_recall_curve(y, score)
    fpr, tpr, _ = roc_curve(y, score)

    def thin(n: int) -> np.ndarray:
        return np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))

    pr = [{"recall": float(recall[i]), "precision": float(precision[i])} for i in thin(len(recall))]
    roc = [{"fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in thin(len(fpr))]
    return {"pr": pr, "roc": roc}


def rounded(values: dict[str, Any], digits: int = 5) -> dict[str, Any]:
    """Round floats for stable, readable metrics files."""
    return {key: _round(value, digits) for key, value in values.items()}


def _round(value: Any, digits: int) -> Any:
    if isinstance(value, dict):
        return rounded(value, digits)
    if isinstance(value, list | tuple):
        return [_round(v, digits) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), digits)
    return value
