"""The rules fallback: documented behaviour, and a riskier transaction never scores lower."""

from __future__ import annotations

import numpy as np

from app.services.rules import BASE_RATE, score_rules


def _features(**values: float) -> dict[str, np.ndarray]:
    base = {
        "log_amount": np.log1p(40.0),
        "amount_to_avg_30d": 1.0,
        "home_distance_km": 3.0,
        "terminal_fraud_risk_30d": 0.0,
        "is_cross_border": 0.0,
        "is_online": 0.0,
        "is_new_customer": 0.0,
        "is_manual_entry": 0.0,
        "is_night": 0.0,
    }
    base.update(values)
    return {k: np.array([v]) for k, v in base.items()}


def test_an_ordinary_payment_is_approved_without_reasons() -> None:
    scores = score_rules(_features())
    assert scores.probability[0] == BASE_RATE
    assert scores.level_index[0] == 0 and scores.fired[0] == []


def test_risky_signals_raise_the_tier_with_reasons() -> None:
    scores = score_rules(
        _features(
            log_amount=np.log1p(6_000.0),
            amount_to_avg_30d=40.0,
            home_distance_km=800.0,
            terminal_fraud_risk_30d=0.5,
        )
    )
    assert scores.level_index[0] == 3  # CRITICAL -> decline
    assert {r.code for r in scores.fired[0]} >= {"VERY_LARGE_AMOUNT", "FAR_FROM_HOME"}
    assert scores.probability[0] < 1.0


def test_a_twenty_times_larger_amount_never_lowers_the_risk() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        amount = float(rng.lognormal(3.5, 1.2))
        habit = float(rng.lognormal(3.5, 0.8))
        extra = {
            "home_distance_km": float(rng.exponential(100)),
            "is_new_customer": float(rng.random() < 0.2),
        }
        low = score_rules(
            _features(log_amount=np.log1p(amount), amount_to_avg_30d=amount / habit, **extra)
        )
        high = score_rules(
            _features(
                log_amount=np.log1p(20 * amount), amount_to_avg_30d=20 * amount / habit, **extra
            )
        )
        assert high.probability[0] >= low.probability[0]
        assert high.level_index[0] >= low.level_index[0]


def test_missing_features_count_as_no_signal() -> None:
    scores = score_rules({"log_amount": np.array([np.log1p(10.0), np.nan])})
    assert np.all(scores.probability == BASE_RATE)
