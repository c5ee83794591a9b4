"""The stacking fusion never gives a member a negative weight (monotone in both scores)."""

from __future__ import annotations

import numpy as np

from fraud_model.scorer import ScoreBatch
from training.modelling.ensemble import fit_stacking


def batch(margin: np.ndarray, error: np.ndarray) -> ScoreBatch:
    n = len(margin)
    empty = np.zeros((n, 1))
    return ScoreBatch(
        ae_score=np.zeros(n),
        clf_score=np.zeros(n),
        clf_margin=margin,
        ae_error=error,
        fused=np.zeros(n),
        probability=np.zeros(n),
        level_index=np.zeros(n, dtype=int),
        feature_errors=empty,
        filled=empty,
        missing=empty.astype(bool),
        leaf_ids=np.zeros((n, 1), dtype=int),
    )


def test_a_member_that_would_get_a_negative_weight_is_dropped() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.2).astype(int)
    margin = 2.0 * y + rng.normal(0, 1, y.size) - 1
    # Conditional on the margin, a higher error here means *less* fraud.
    error = np.exp(-1.5 * y + 0.8 * margin + rng.normal(0, 0.5, y.size))
    fusion = fit_stacking(batch(margin, error), y)
    assert fusion.coef_ae == 0.0 and fusion.coef_clf > 0.5
    higher = fusion(np.zeros(3), np.array([0.0, 0.5, 1.0]), np.array([1.0, 2.0, 4.0]))
    assert np.all(np.diff(higher) > 0)


def test_informative_members_keep_their_weights() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.2).astype(int)
    margin = 2.0 * y + rng.normal(0, 1, y.size) - 1
    error = np.exp(1.0 * y + rng.normal(0, 0.5, y.size))
    fusion = fit_stacking(batch(margin, error), y)
    assert fusion.coef_ae > 0.5 and fusion.coef_clf > 0.5
