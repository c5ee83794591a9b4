"""Predictions in words: values by kind, one sentence per reason and degraded flag."""

from __future__ import annotations

import math

import pytest

from app.dashboard.explain import (
    degraded_text,
    explain,
    format_value,
    reason_text,
    shown,
    summary,
)
from app.services.predictor import Prediction
from fraud_model.decisions import Tiers
from fraud_model.scorer import Reason

TIERS = Tiers(0.05, 0.11, 0.51)


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (1.0, "flag", "yes"),
        (0.0, "flag", "no"),
        (math.log1p(1899.0), "log_amount", "1,899.00"),
        (0.25, "share", "25.0%"),
        (3.456, "ratio", "3.46×"),
        (12.34, "km", "12.3 km"),
        (900.4, "kmh", "900 km/h"),
        (45.0, "seconds", "45 s"),
        (5400.0, "seconds", "1.5 h"),
        (30 * 86_400.0, "seconds", "none in 30 days"),
        (1234.0, "count", "1,234"),
        (float("nan"), "amount", "unknown"),
    ],
)
def test_values_read_by_kind(value: float, kind: str, shown: str) -> None:
    assert format_value(value, kind) == shown  # type: ignore[arg-type]


def test_each_source_has_its_sentence() -> None:
    clf = Reason(
        "TERMINAL_FRAUD_RISK_7D", "terminal_fraud_risk_7d", "classifier", math.log(4.0), 0.5
    )
    assert reason_text(clf) == (
        "The terminal's known fraud rate over 7 days: 50.0%. "
        "This multiplied the odds of fraud by 4.0."
    )
    ae = Reason("UNUSUAL_HOME_DISTANCE_KM", "home_distance_km", "autoencoder", 0.42, 850.0)
    assert reason_text(ae) == (
        "The distance from the card holder's home: 850.0 km, unusual for legitimate "
        "transactions (42% of the anomaly score)."
    )
    rule = Reason("FAR_FROM_HOME", "home_distance_km", "rules", 0.25, 850.0)
    assert reason_text(rule) == (
        "The terminal is 300 km or more from the card holder's home. "
        "Rule FAR_FROM_HOME adds 0.25 to the probability."
    )


def test_category_codes_read_as_their_names() -> None:
    assert shown("entry_mode_code", 4.0) == "manual"
    assert shown("merchant_category_code", 9.0) == "online retail"
    assert shown("merchant_category_code", 11.0) == "unknown"  # outside the vocabulary
    assert shown("log_amount", math.log1p(10.0)) == "10.00"


def test_degraded_flags_say_what_was_missing() -> None:
    assert degraded_text("customer_features:new_entity").startswith("No card's history")
    assert "out of date" in degraded_text("terminal_features:stale")
    assert "did not answer within the time budget" in degraded_text("feature_store:timeout")
    assert degraded_text("odd") == "odd"


@pytest.mark.parametrize(
    ("p", "level", "decision", "words"),
    [
        (
            0.01,
            "LOW",
            "approve",
            "Approve: the model puts the fraud probability at 0.010, below the review "
            "threshold 0.05.",
        ),
        (0.07, "MEDIUM", "review", "at or above the MEDIUM threshold 0.05"),
        (0.2, "HIGH", "step_up", "Ask the card holder to authenticate (step-up)"),
        (
            0.9,
            "CRITICAL",
            "decline",
            "Decline: the model puts the fraud probability at 0.900, at or above the "
            "CRITICAL threshold 0.51.",
        ),
    ],
)
def test_the_summary_names_the_threshold(p: float, level: str, decision: str, words: str) -> None:
    prediction = Prediction(p, level, decision, None, None, [], "model", [])  # type: ignore[arg-type]
    assert words in summary(prediction, TIERS)


def test_explain_keeps_every_reason_and_flag_in_order() -> None:
    reasons = [
        Reason("LOG_AMOUNT", "log_amount", "classifier", 1.0, math.log1p(50.0)),
        Reason("UNUSUAL_IS_NIGHT", "is_night", "autoencoder", 0.3, 1.0),
    ]
    p = Prediction(
        0.3, "HIGH", "step_up", 0.95, 0.2, reasons, "rules_fallback", ["feature_store:error"]
    )
    out = explain(p, TIERS)
    assert "the rules fallback" in out["summary"]
    assert [r["code"] for r in out["reasons"]] == ["LOG_AMOUNT", "UNUSUAL_IS_NIGHT"]
    assert out["reasons"][0]["value"] == "50.00" and out["reasons"][1]["value"] == "yes"
    assert out["degraded"] == [
        {"flag": "feature_store:error", "text": degraded_text("feature_store:error")}
    ]
