"""Cost-based risk tiers: choose the MEDIUM / HIGH / CRITICAL thresholds that minimise the
expected cost of decisions on validation, within a daily alert budget.

Per transaction and action (a fraud costs its amount when it gets through):

=========  ==========================================  ===========================
action     fraud                                       legitimate
=========  ==========================================  ===========================
approve    amount                                      0
review     review + amount * (1 - review_recovery)     review
step_up    amount * (1 - step_up_block)                step_up_friction
decline    0                                           decline_friction
=========  ==========================================  ===========================

An alert is any decision other than approve; the alerts per day must stay within the
budget the team can handle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fraud_model.decisions import Tiers

ACTIONS = ("approve", "review", "step_up", "decline")


@dataclass(frozen=True)
class CostModel:
    """``params.yaml`` section ``train.decision.cost``."""

    review: float = 3.0
    review_recovery: float = 0.7
    step_up_friction: float = 8.0
    step_up_block: float = 0.9
    decline_friction: float = 30.0

    def action_costs(self, y: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """n x 4 matrix: the cost of each action (columns in ``ACTIONS`` order) per row."""
        fraud = y.astype(bool)
        legit = ~fraud
        return np.column_stack(
            [
                np.where(fraud, amount, 0.0),
                self.review + np.where(fraud, amount * (1 - self.review_recovery), 0.0),
                np.where(fraud, amount * (1 - self.step_up_block), self.step_up_friction),
                np.where(legit, self.decline_friction, 0.0),
            ]
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def decision_cost(
    level_index: np.ndarray, y: np.ndarray, amount: np.ndarray, cost: CostModel
) -> float:
    """Total cost of the decisions taken (tier 0..3 = approve..decline)."""
    costs = cost.action_costs(y, amount)
    return float(costs[np.arange(len(y)), level_index].sum())


def optimise_tiers(
    prob: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    n_days: int,
    cost: CostModel,
    budget_per_day: float,
    grid_step: float = 0.01,
) -> tuple[Tiers, dict[str, float]]:
    """Thresholds on a grid minimising total cost with alerts/day <= budget.

    Costs are summed per probability bin, so every monotone triple of thresholds is
    evaluated from prefix sums at once.
    """
    grid = np.round(np.arange(grid_step, 1.0, grid_step), 6)
    edges = np.concatenate([[0.0], grid, [np.inf]])
    bins = np.searchsorted(edges, prob, side="right") - 1  # bin b covers [edges[b], edges[b+1])
    n_bins = len(edges) - 1
    costs = cost.action_costs(y, amount)
    per_bin = np.stack([np.bincount(bins, weights=costs[:, a], minlength=n_bins) for a in range(4)])
    counts = np.bincount(bins, minlength=n_bins)
    prefix = np.concatenate([np.zeros((4, 1)), np.cumsum(per_bin, axis=1)], axis=1)
    count_prefix = np.concatenate([[0], np.cumsum(counts)])
    # Threshold index t in 1..n_bins-1 means "at or above grid[t-1]" = bins >= t.
    t = np.arange(1, n_bins)
    t1, t2, t3 = np.meshgrid(t, t, t, indexing="ij", sparse=True)
    total = (
        prefix[0][t1]
        + (prefix[1][t2] - prefix[1][t1])
        + (prefix[2][t3] - prefix[2][t2])
        + (prefix[3][-1] - prefix[3][t3])
    )
    alerts_per_day = (count_prefix[-1] - count_prefix[t1]) / n_days
    feasible = (t1 <= t2) & (t2 <= t3) & (alerts_per_day <= budget_per_day)
    total = np.where(feasible, total, np.inf)
    if not np.isfinite(total.min()):
        raise ValueError(f"no thresholds keep alerts within {budget_per_day}/day on this data")
    i1, i2, i3 = np.unravel_index(int(np.argmin(total)), total.shape)
    tiers = Tiers(float(grid[i1]), float(grid[i2]), float(grid[i3]))
    report = {
        "cost": float(total[i1, i2, i3]),
        "approve_all_cost": float(prefix[0][-1]),
        "alerts_per_day": float((count_prefix[-1] - count_prefix[i1 + 1]) / n_days),
    }
    return tiers, report
