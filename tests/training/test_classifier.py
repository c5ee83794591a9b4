"""LightGBM member: the focal-loss gradient, SMOTE on the training rows only, the refit,
monotone constraints."""

from __future__ import annotations

import numpy as np
import pytest

from fraud_model.fusion import sigmoid
from training.modelling.classifier import (
    ClassifierConfig,
    focal_gradient,
    refit_classifier,
    smote,
    training_params,
)


def _focal_loss(margin: np.ndarray, y: np.ndarray, alpha: float, gamma: float) -> np.ndarray:
    p = sigmoid(margin)
    p_t = np.where(y > 0, p, 1 - p)
    alpha_t = np.where(y > 0, alpha, 1 - alpha)
    loss: np.ndarray = -alpha_t * (1 - p_t) ** gamma * np.log(p_t)
    return loss


@pytest.mark.parametrize("label", [0, 1])
def test_focal_gradient_matches_finite_differences(label: int) -> None:
    margin = np.linspace(-6, 6, 49)
    y = np.full_like(margin, label)
    eps = 1e-6
    numeric = (
        _focal_loss(margin + eps, y, 0.75, 2.0) - _focal_loss(margin - eps, y, 0.75, 2.0)
    ) / (2 * eps)
    assert np.allclose(focal_gradient(margin, y, 0.75, 2.0), numeric, atol=1e-6)


def test_smote_only_adds_synthetic_minority_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 4))
    y = (rng.random(2_000) < 0.02).astype(int)
    x_res, y_res = smote(x, y, ClassifierConfig(smote_ratio=0.1), seed=0)
    n_neg = int((y == 0).sum())
    assert int((y_res == 0).sum()) == n_neg
    assert int(y_res.sum()) == round(0.1 * n_neg)
    assert np.array_equal(x_res[: len(x)], x)


def test_refit_with_the_folds_rounds_has_exactly_that_many_trees() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3_000, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=3_000) > 2.0).astype(int)
    config = ClassifierConfig(min_child_samples=10)
    booster = refit_classifier("none", x, y, config, rounds=17, seed=0, threads=1)
    assert booster.current_iteration() == 17


def test_monotone_constraints_apply_only_to_named_features_present() -> None:
    x, y = np.zeros((10, 3)), np.array([0, 1] * 5)
    config = ClassifierConfig(monotone_increasing=("b", "absent"))
    params, _, _ = training_params("none", x, y, config, 0, 1, ["a", "b", "c"])
    assert params["monotone_constraints"] == [0, 1, 0]
    params, _, _ = training_params("none", x, y, ClassifierConfig(), 0, 1, ["a", "b", "c"])
    assert "monotone_constraints" not in params
