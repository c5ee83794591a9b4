"""Cost-based tiers: the optimiser finds the cheapest thresholds within the alert budget."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fraud_model.decisions import Tiers
from training.modelling.decision import CostModel, decision_cost, optimise_tiers


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 20_000
    prob = rng.beta(0.4, 12.0, n)
    y = (rng.random(n) < prob).astype(int)
    amount = rng.lognormal(4.0, 1.0, n)
    return prob, y, amount


def test_costs_follow_the_documented_table() -> None:
    cost = CostModel(
        review=3, review_recovery=0.7, step_up_friction=8, step_up_block=0.9, decline_friction=30
    )
    table = cost.action_costs(np.array([1, 0]), np.array([100.0, 100.0]))
    assert table[0].tolist() == pytest.approx([100.0, 33.0, 10.0, 0.0])
    assert table[1].tolist() == pytest.approx([0.0, 3.0, 8.0, 30.0])


def test_optimised_tiers_match_brute_force_and_respect_the_budget(
    scored: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    prob, y, amount = scored
    cost, days, budget = CostModel(), 10, 150.0
    tiers, report = optimise_tiers(prob, y, amount, days, cost, budget, grid_step=0.05)
    alerts = tiers.level_index(prob) >= 1
    assert alerts.sum() / days <= budget
    assert report["cost"] == pytest.approx(decision_cost(tiers.level_index(prob), y, amount, cost))
    grid = np.round(np.arange(0.05, 1.0, 0.05), 6)
    best = np.inf
    for t in itertools.combinations_with_replacement(grid, 3):
        candidate = Tiers(*t)
        level = candidate.level_index(prob)
        if (level >= 1).sum() / days <= budget:
            best = min(best, decision_cost(level, y, amount, cost))
    assert report["cost"] == pytest.approx(best)
    assert report["cost"] < report["approve_all_cost"]


def test_an_impossible_budget_is_refused(
    scored: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    prob, y, amount = scored
    with pytest.raises(ValueError):
        optimise_tiers(np.ones_like(prob), y, amount, 10, CostModel(), 1.0)


def test_tiers_map_probabilities_to_levels() -> None:
    tiers = Tiers(0.3, 0.6, 0.85)
    assert tiers.levels(np.array([0.0, 0.3, 0.59, 0.6, 0.85, 1.0])) == [
        "LOW",
        "MEDIUM",
        "MEDIUM",
        "HIGH",
        "CRITICAL",
        "CRITICAL",
    ]
    with pytest.raises(ValueError):
        Tiers(0.6, 0.3, 0.9)
