"""Label-noise defense: out-of-fold confident learning (Northcutt et al., 2021), binary case.

1. Out-of-fold fraud probabilities for every training row from K LightGBM models, each
   trained on contiguous time blocks other than the row's own.
2. Per-class thresholds: the mean predicted probability of each class among rows given
   that label (``t_fraud``, ``t_legit``).
3. The confident joint counts rows labelled one class whose probability of the other
   class reaches that class's threshold; those counts estimate how many labels of each
   class are wrong.
4. Within each label, that many rows with the largest margin towards the other class are
   flagged ("prune by noise rate"), capped at ``max_flag_share`` of the rows.

Flagged rows are left out of training and written to a review file with their
out-of-fold probability, so an analyst can confirm or correct them; nothing is silently
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from sklearn.metrics import average_precision_score

from fraud_model.fusion import sigmoid


@dataclass(frozen=True)
class DefenseConfig:
    """``params.yaml`` section ``train.defense``."""

    enabled: bool = False
    method: str = "confident_learning"
    folds: int = 4
    max_flag_share: float = 0.25

    def __post_init__(self) -> None:
        if self.method != "confident_learning":
            raise ValueError(f"unknown defense method {self.method!r}")
        if self.folds < 2:
            raise ValueError("the defense needs at least 2 folds")


@dataclass(frozen=True)
class DefenseResult:
    flagged: np.ndarray  # bool per training row
    oof_probability: np.ndarray
    estimated_errors: dict[str, int]
    thresholds: dict[str, float]
    oof_auprc: float


def out_of_fold_probability(
    x: np.ndarray, y: np.ndarray, folds: int, seed: int, threads: int
) -> np.ndarray:
    """Fraud probability of each row from a model that never saw it (time-block folds)."""
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 50,
        "feature_fraction": 0.8,
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    oof = np.zeros(len(y))
    blocks = np.array_split(np.arange(len(y)), folds)
    for block in blocks:
        train = np.ones(len(y), dtype=bool)
        train[block] = False
        booster = lgb.train(params, lgb.Dataset(x[train], label=y[train]), num_boost_round=200)
        oof[block] = sigmoid(np.asarray(booster.predict(x[block], raw_score=True)))
    return oof


def confident_learning(
    x: np.ndarray, y: np.ndarray, config: DefenseConfig, seed: int, threads: int
) -> DefenseResult:
    """Flag the training rows whose labels are most likely wrong."""
    p = out_of_fold_probability(x, y, config.folds, seed, threads)
    fraud, legit = y == 1, y == 0
    t_fraud = float(p[fraud].mean()) if fraud.any() else 1.0
    t_legit = float((1 - p[legit]).mean()) if legit.any() else 1.0
    # A row confidently belongs to a class when its probability of that class reaches the
    # class threshold (both reached: the larger probability decides).
    above_fraud, above_legit = p >= t_fraud, (1 - p) >= t_legit
    confident_fraud = above_fraud & (~above_legit | (p > 1 - p))
    confident_legit = above_legit & (~above_fraud | (1 - p >= p))
    legit_looks_fraud = legit & confident_fraud
    fraud_looks_legit = fraud & confident_legit
    n_legit_wrong = int(legit_looks_fraud.sum())
    n_fraud_wrong = int(fraud_looks_legit.sum())
    cap = int(config.max_flag_share * len(y))
    flagged = np.zeros(len(y), dtype=bool)
    margin = p - (1 - p)  # towards fraud
    for members, count, sign in ((legit, n_legit_wrong, 1.0), (fraud, n_fraud_wrong, -1.0)):
        index = np.flatnonzero(members)
        count = min(count, cap - int(flagged.sum()), len(index))
        if count > 0:
            flagged[index[np.argsort(-sign * margin[index], kind="stable")[:count]]] = True
    return DefenseResult(
        flagged=flagged,
        oof_probability=p,
        estimated_errors={
            "legit_labelled_fraud_like": n_legit_wrong,
            "fraud_labelled_legit_like": n_fraud_wrong,
        },
        thresholds={"t_fraud": t_fraud, "t_legit": t_legit},
        oof_auprc=float(average_precision_score(y, p)) if fraud.any() and legit.any() else 0.0,
    )
