"""Interpretable rules: the fallback when no valid model bundle is loaded.

Each rule adds a fixed amount of risk when its condition holds; the probability is the
base rate plus the sum, capped below 1, and the default tiers (0.30 / 0.60 / 0.85) turn
it into a decision. Every rule that fires is a reason code (source ``rules``). The rules
read the same named features the model uses, so the fallback needs no extra lookups.
Adding risk only, the score can never fall when a transaction gets riskier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from fraud_model.arrays import FloatArray
from fraud_model.decisions import Tiers

BASE_RATE = 0.01
CAP = 0.99
DEFAULT_TIERS = Tiers()

Features = Mapping[str, FloatArray]


@dataclass(frozen=True)
class Rule:
    code: str
    feature: str  # the feature the reason reports
    weight: float
    fires: Callable[[Features], np.ndarray]
    meaning: str = ""  # one sentence for people (the dashboard's explanation)


def _col(features: Features, name: str, n: int) -> FloatArray:
    values = features.get(name)
    if values is None:
        return np.zeros(n)
    out: FloatArray = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    return out


def _n(features: Features) -> int:
    return len(np.atleast_1d(next(iter(features.values()))))


RULES: tuple[Rule, ...] = (
    Rule(
        "AMOUNT_FAR_ABOVE_HABIT",
        "amount_to_avg_30d",
        0.30,
        lambda f: (
            (_col(f, "amount_to_avg_30d", _n(f)) >= 5.0)
            & (_col(f, "log_amount", _n(f)) >= np.log1p(200.0))
        ),
        meaning="The amount is at least 5 times the card's 30-day average and over 200.",
    ),
    Rule(
        "VERY_LARGE_AMOUNT",
        "log_amount",
        0.30,
        lambda f: _col(f, "log_amount", _n(f)) >= np.log1p(5_000.0),
        meaning="The amount is 5,000 or more.",
    ),
    Rule(
        "FAR_FROM_HOME",
        "home_distance_km",
        0.25,
        lambda f: _col(f, "home_distance_km", _n(f)) >= 300.0,
        meaning="The terminal is 300 km or more from the card holder's home.",
    ),
    Rule(
        "RISKY_TERMINAL",
        "terminal_fraud_risk_30d",
        0.35,
        lambda f: _col(f, "terminal_fraud_risk_30d", _n(f)) >= 0.2,
        meaning="At least 20 % of this terminal's labelled transactions in 30 days were fraud.",
    ),
    Rule(
        "FOREIGN_ONLINE",
        "is_cross_border",
        0.15,
        lambda f: (_col(f, "is_cross_border", _n(f)) > 0) & (_col(f, "is_online", _n(f)) > 0),
        meaning="A cross-border online purchase.",
    ),
    Rule(
        "NEW_CUSTOMER_LARGE_AMOUNT",
        "is_new_customer",
        0.20,
        lambda f: (
            (_col(f, "is_new_customer", _n(f)) > 0)
            & (_col(f, "log_amount", _n(f)) >= np.log1p(1_000.0))
        ),
        meaning="A card with no history spends 1,000 or more.",
    ),
    Rule(
        "MANUAL_ENTRY_AT_NIGHT",
        "is_manual_entry",
        0.10,
        lambda f: (_col(f, "is_manual_entry", _n(f)) > 0) & (_col(f, "is_night", _n(f)) > 0),
        meaning="The card number was typed in, at night.",
    ),
)


@dataclass(frozen=True)
class RuleScores:
    probability: FloatArray
    level_index: np.ndarray
    fired: list[list[Rule]]


def score_rules(features: Features) -> RuleScores:
    """Rule-based probability, tier and fired rules for every transaction."""
    n = _n(features)
    fired_matrix = np.column_stack([rule.fires(features) for rule in RULES]).astype(bool)
    weights = np.array([rule.weight for rule in RULES])
    probability = np.minimum(BASE_RATE + fired_matrix @ weights, CAP)
    fired = [[RULES[j] for j in np.flatnonzero(fired_matrix[i])] for i in range(n)]
    return RuleScores(probability, DEFAULT_TIERS.level_index(probability), fired)
