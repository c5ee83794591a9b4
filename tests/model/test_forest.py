"""The compiled classifier: the same margin as LightGBM, additive path credits, both reason
methods, and one row through the C fast path equal to a batch."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from fraud_model.forest import CompiledForest
from fraud_model.scorer import EnsembleScorer


@pytest.fixture(scope="module")
def forest_and_x(tiny_trained: Any) -> tuple[CompiledForest, np.ndarray]:
    result, parts, _ = tiny_trained
    scorer = EnsembleScorer(result.bundle)
    x = scorer.impute(parts["test"].x[:400])[0]
    return scorer.forest, x


def test_margin_equals_lightgbm_raw_score(forest_and_x: tuple[CompiledForest, np.ndarray]) -> None:
    forest, x = forest_and_x
    expected = forest.booster.predict(x, raw_score=True)
    margin = forest.margin(forest.global_leaves(forest.leaves(x)))
    assert np.abs(margin - expected).max() < 1e-10


def test_one_row_fast_path_equals_the_batch(
    forest_and_x: tuple[CompiledForest, np.ndarray],
) -> None:
    forest, x = forest_and_x
    batch = forest.leaves(x[:50])
    rows = np.vstack([forest.leaves(x[i : i + 1]) for i in range(50)])
    assert np.array_equal(batch, rows)
    # NaN goes down LightGBM's missing-value branch in both paths
    holes = x[:20].copy()
    holes[:, ::3] = np.nan
    single = np.vstack([forest.leaves(holes[i : i + 1]) for i in range(20)])
    assert np.array_equal(forest.leaves(holes), single)
    expected = forest.booster.predict(holes, raw_score=True)
    assert np.abs(forest.margin(forest.global_leaves(single)) - expected).max() < 1e-10


def test_path_credits_add_up_and_share_treeshap_bias(
    forest_and_x: tuple[CompiledForest, np.ndarray],
) -> None:
    forest, x = forest_and_x
    ids = forest.global_leaves(forest.leaves(x))
    credits = forest.contributions(ids)
    margin = forest.margin(ids)
    assert np.abs(credits.sum(axis=1) + forest.tables.bias - margin).max() < 1e-9
    shap = forest.booster.predict(x, pred_contrib=True)
    assert forest.tables.bias == pytest.approx(shap[0, -1], abs=1e-9)
    # the sparse (batch) and dense (few rows) paths agree
    dense = np.vstack([forest.contributions(ids[i : i + 1]) for i in range(30)])
    assert np.abs(dense - credits[:30]).max() < 1e-12


def test_path_credits_on_a_known_stump() -> None:
    """One split on feature 0 at 0.5: left leaf -1 (30 rows), right +2 (10 rows)."""
    x = np.r_[np.zeros(30), np.ones(10)][:, None] * np.ones((1, 2))
    y = np.r_[np.zeros(30), np.ones(10)]
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 2, "min_data_in_leaf": 1, "learning_rate": 1.0,
         "verbose": -1, "boost_from_average": False, "min_data_in_bin": 1},
        lgb.Dataset(x, y), num_boost_round=1,
    )  # fmt: skip
    forest = CompiledForest(booster)
    ids = forest.global_leaves(forest.leaves(np.array([[1.0, 1.0], [0.0, 0.0]])))
    credits = forest.contributions(ids)
    expected = booster.predict(np.array([[1.0, 1.0], [0.0, 0.0]]))
    mean = (30 * expected[1] + 10 * expected[0]) / 40
    assert forest.tables.bias == pytest.approx(mean)
    assert credits[:, 1] == pytest.approx([0.0, 0.0])  # never split on
    assert credits[:, 0] == pytest.approx(expected - mean)


def test_both_reason_methods_name_the_features_that_raise_risk(tiny_trained: Any) -> None:
    result, parts, _ = tiny_trained
    x = parts["test"].x
    path = EnsembleScorer(result.bundle)
    exact = EnsembleScorer(result.bundle, reason_method="treeshap")
    batch = path.score(x[:300])
    shap = exact.contributions(batch)
    assert (
        np.abs(
            shap - result.bundle.classifier.predict(batch.filled, pred_contrib=True)[:, :-1]
        ).max()
        < 1e-12
    )
    for method, scorer, values in (
        ("path", path, path.contributions(batch)),
        ("treeshap", exact, shap),
    ):
        for row, reasons in enumerate(scorer.reasons(batch, top_k=3)):
            clf = [r for r in reasons if r.source == "classifier"]
            expected = [
                j for j in np.argsort(-values[row], kind="stable")[:3] if values[row, j] > 0
            ]
            assert [r.feature for r in clf] == [scorer.features[j] for j in expected], method
            assert all(r.contribution > 0 for r in clf)
    with pytest.raises(ValueError, match="reason method"):
        EnsembleScorer(result.bundle, reason_method="lime")  # type: ignore[arg-type]


def test_a_scorer_pickles_after_scoring_one_row(tiny_trained: Any) -> None:
    """MLflow's pyfunc wrapper pickles a scorer that has already served single rows."""
    import pickle

    result, parts, _ = tiny_trained
    scorer = EnsembleScorer(result.bundle)
    x = parts["test"].x[:5]
    before = [scorer.score(x[i : i + 1]).probability[0] for i in range(5)]
    clone = pickle.loads(pickle.dumps(scorer))
    after = [clone.score(x[i : i + 1]).probability[0] for i in range(5)]
    assert before == after
