"""LightGBM member: the focal-loss gradient, SMOTE on the training fold only, selection."""

from __future__ import annotations

import numpy as np
import pytest

from fraud_model.fusion import sigmoid
from training.modelling.classifier import ClassifierConfig, focal_gradient, select_classifier, smote


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


def test_selection_keeps_the_best_validation_auprc() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6_000, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=6_000) > 2.2).astype(int)
    config = ClassifierConfig(max_rounds=40, early_stopping_rounds=10, min_child_samples=10)
    best, comparison = select_classifier(
        x[:4000], y[:4000], x[4000:], y[4000:], config, seed=0, threads=1, log=lambda _: None
    )
    assert set(comparison) == {"none", "scale_pos_weight", "focal", "smote"}
    assert best.val_auprc == max(c["val_auprc"] for c in comparison.values()) or (
        best.val_auprc == pytest.approx(max(c["val_auprc"] for c in comparison.values()), abs=1e-5)
    )
    assert best.val_auprc > 0.5
