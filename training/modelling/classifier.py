"""The LightGBM member and the class-imbalance strategies it is trained with.

Four strategies: no reweighting, ``scale_pos_weight`` = negatives / positives, a
focal-loss objective (alpha 0.75, gamma 2), and SMOTE oversampling of the training rows
only. The search (:mod:`training.modelling.search`) chooses among them on the time folds;
a fold's model stops early on its window's average precision, and the final model is
refitted on all training time with the folds' number of trees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import average_precision_score

from fraud_model.fusion import sigmoid

IMBALANCE_METHODS = ("none", "scale_pos_weight", "focal", "smote")
MONOTONE_MODES = ("search", "on", "off")


@dataclass(frozen=True)
class ClassifierConfig:
    """``params.yaml`` section ``train.classifier``."""

    imbalance: tuple[str, ...] = IMBALANCE_METHODS
    focal_alpha: float = 0.75
    focal_gamma: float = 2.0
    smote_ratio: float = 0.10
    smote_neighbors: int = 5
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_rounds: int = 1500
    early_stopping_rounds: int = 100
    # Features whose increase may never lower the classifier's score (a business rule:
    # a larger amount must not make a transaction look safer) ...
    monotone_increasing: tuple[str, ...] = ()
    # ... enforced ("on"), left out ("off"), or kept only if the time folds favour it.
    monotone: str = "search"

    def __post_init__(self) -> None:
        unknown = set(self.imbalance) - set(IMBALANCE_METHODS)
        if unknown or not self.imbalance:
            raise ValueError(f"imbalance methods must be among {IMBALANCE_METHODS}: {unknown}")
        if self.monotone not in MONOTONE_MODES:
            raise ValueError(f"monotone must be one of {MONOTONE_MODES}, got {self.monotone!r}")


def focal_gradient(margin: np.ndarray, y: np.ndarray, alpha: float, gamma: float) -> np.ndarray:
    """d(focal loss)/d(margin) for binary labels (Lin et al. 2017)."""
    p = sigmoid(margin)
    pos = alpha * (1 - p) ** gamma * (gamma * p * np.log(np.clip(p, 1e-12, 1)) - (1 - p))
    neg = (1 - alpha) * p**gamma * (p - gamma * (1 - p) * np.log(np.clip(1 - p, 1e-12, 1)))
    grad: np.ndarray = np.where(y > 0, pos, neg)
    return grad


def focal_objective(
    alpha: float, gamma: float
) -> Callable[[np.ndarray, lgb.Dataset], tuple[np.ndarray, np.ndarray]]:
    """A LightGBM objective: analytic gradient, central-difference Hessian (kept positive)."""

    def objective(margin: np.ndarray, data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(data.get_label())
        grad = focal_gradient(margin, y, alpha, gamma)
        eps = 1e-3
        hess = (
            focal_gradient(margin + eps, y, alpha, gamma)
            - focal_gradient(margin - eps, y, alpha, gamma)
        ) / (2 * eps)
        return grad, np.maximum(hess, 1e-6)

    return objective


def smote(
    x: np.ndarray, y: np.ndarray, config: ClassifierConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE on the training fold only (never on validation or test rows)."""
    from imblearn.over_sampling import SMOTE

    n_pos = int(y.sum())
    if n_pos <= config.smote_neighbors or n_pos / max(1, len(y) - n_pos) >= config.smote_ratio:
        return x, y
    sampler = SMOTE(
        sampling_strategy=config.smote_ratio, k_neighbors=config.smote_neighbors, random_state=seed
    )
    x_res, y_res = sampler.fit_resample(x, y)
    return np.asarray(x_res), np.asarray(y_res)


def base_params(config: ClassifierConfig, seed: int, threads: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": config.bagging_freq,
        "lambda_l2": config.lambda_l2,
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


@dataclass(frozen=True)
class FittedClassifier:
    method: str
    booster: lgb.Booster
    val_auprc: float
    val_margin: np.ndarray
    best_iteration: int
    seconds: float


def training_params(
    method: str,
    x: np.ndarray,
    y: np.ndarray,
    config: ClassifierConfig,
    seed: int,
    threads: int,
    feature_names: list[str],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """LightGBM parameters for an imbalance strategy, and the rows to train on (SMOTE adds
    synthetic frauds to the training rows only)."""
    params = base_params(config, seed, threads)
    if method == "scale_pos_weight":
        params["scale_pos_weight"] = (len(y) - y.sum()) / max(1, y.sum())
    elif method == "focal":
        params["objective"] = focal_objective(config.focal_alpha, config.focal_gamma)
    elif method == "smote":
        x, y = smote(x, y, config, seed)
    elif method != "none":
        raise ValueError(f"unknown imbalance method {method!r}")
    constrained = set(config.monotone_increasing) & set(feature_names)  # absent elsewhere
    if constrained and config.monotone != "off":
        params["monotone_constraints"] = [
            int(n in config.monotone_increasing) for n in feature_names
        ]
    return params, x, y


def _names(x: np.ndarray, feature_names: list[str] | None) -> list[str]:
    return feature_names or [f"f{i}" for i in range(x.shape[1])]


def fit_classifier(
    method: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: ClassifierConfig,
    seed: int,
    threads: int,
    feature_names: list[str] | None = None,
) -> FittedClassifier:
    """Fit one LightGBM model with an imbalance strategy, early-stopped on validation AUPRC."""
    started = time.perf_counter()
    names = _names(x_train, feature_names)
    params, x_train, y_train = training_params(
        method, x_train, y_train, config, seed, threads, names
    )
    train_set = lgb.Dataset(x_train, label=y_train, feature_name=names, free_raw_data=True)
    val_set = lgb.Dataset(x_val, label=y_val, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.max_rounds,
        valid_sets=[val_set],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    booster.free_dataset()
    margin = booster.predict(x_val, raw_score=True, num_iteration=booster.best_iteration)
    # Keep only the trees up to the best iteration, so the served model is exactly this one.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return FittedClassifier(
        method=method,
        booster=booster,
        val_auprc=float(average_precision_score(y_val, margin)),
        val_margin=np.asarray(margin, dtype=np.float64),
        best_iteration=int(booster.current_iteration()),
        seconds=round(time.perf_counter() - started, 1),
    )


def refit_classifier(
    method: str,
    x: np.ndarray,
    y: np.ndarray,
    config: ClassifierConfig,
    rounds: int,
    seed: int,
    threads: int,
    feature_names: list[str] | None = None,
) -> lgb.Booster:
    """The same model on all training rows, with the number of trees the folds chose."""
    names = _names(x, feature_names)
    params, x, y = training_params(method, x, y, config, seed, threads, names)
    train_set = lgb.Dataset(x, label=y, feature_name=names, free_raw_data=True)
    booster = lgb.train(params, train_set, num_boost_round=max(1, rounds))
    booster.free_dataset()
    return lgb.Booster(model_str=booster.model_to_string())
