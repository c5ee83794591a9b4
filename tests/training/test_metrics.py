"""Alert metrics computed by hand on tiny examples."""

from __future__ import annotations

import numpy as np
import pytest

from training.modelling import metrics as m


def test_precision_and_card_precision_at_k() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    score = np.array([0.9, 0.8, 0.7, 0.95, 0.1, 0.2])
    day = np.array([0, 0, 0, 1, 1, 1])
    card = np.array(["a", "a", "b", "c", "c", "d"])
    # Day 0 top-2 transactions: 0.9 (fraud), 0.8 (legit) -> 0.5; day 1: 0.95, 0.2 -> 0.5.
    assert m.precision_at_k(y, score, day, 2) == pytest.approx(0.5)
    # Day 0 cards: a (max 0.9, compromised), b (0.7, compromised) -> 1.0;
    # day 1: c (0.95, clean), d (0.2, compromised) -> 0.5.
    assert m.card_precision_at_k(y, score, day, card, 2) == pytest.approx(0.75)
    assert m.recall_at_budget(y, score, day, 1) == pytest.approx(1 / 3)


def test_threshold_metrics_and_ece() -> None:
    y = np.array([1, 1, 0, 0])
    out = m.at_threshold(y, np.array([True, False, True, False]))
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert m.expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    assert m.expected_calibration_error(np.array([0, 0]), np.array([0.5, 0.5])) == 0.5
