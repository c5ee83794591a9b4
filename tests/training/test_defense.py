"""The label-noise defense flags flipped labels, mostly correctly."""

from __future__ import annotations

import numpy as np

from training.modelling.defense import DefenseConfig, confident_learning


def test_confident_learning_finds_hidden_fraud() -> None:
    rng = np.random.default_rng(0)
    n = 12_000
    x = rng.normal(size=(n, 6))
    y_true = (x[:, 0] + x[:, 1] > 2.8).astype(np.int8)  # separable fraud, ~2.4%
    fraud = np.flatnonzero(y_true)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(fraud, size=len(fraud) // 5, replace=False)] = True  # 20% hidden
    y = np.where(flipped, 0, y_true).astype(np.int8)
    result = confident_learning(x, y, DefenseConfig(enabled=True), seed=0, threads=1)
    assert result.flagged.any()
    precision = flipped[result.flagged].mean()
    recall = result.flagged[flipped].mean()
    assert precision >= 0.5
    assert recall >= 0.5
    assert result.flagged.sum() <= 0.25 * n


def test_clean_separable_labels_are_barely_flagged() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8_000, 4))
    y = (x[:, 0] > 2.0).astype(np.int8)
    result = confident_learning(x, y, DefenseConfig(enabled=True), seed=0, threads=1)
    assert result.flagged.mean() < 0.01
