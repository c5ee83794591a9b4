"""A prediction in words: the decision and why, for people rather than programs.

Reason codes become sentences from the feature glossary (``feature_repo/glossary.py``)
and the rules' own meanings; degraded flags say what the score could not use.
"""

from __future__ import annotations

import math
from typing import Any

from app.services.predictor import Prediction
from app.services.rules import RULES
from feature_repo.glossary import Kind, term
from feature_repo.vocabulary import ENTRY_MODES, MERCHANT_CATEGORIES
from fraud_model.decisions import Tiers
from fraud_model.scorer import Reason

DECISION_TEXT = {
    "approve": "Approve",
    "review": "Send to an analyst for review",
    "step_up": "Ask the card holder to authenticate (step-up)",
    "decline": "Decline",
}
_RULE_MEANING = {rule.code: rule.meaning for rule in RULES}
_CODES = {"entry_mode_code": ENTRY_MODES, "merchant_category_code": MERCHANT_CATEGORIES}
_VIEW_WORDS = {
    "customer_features": "card's history",
    "terminal_features": "terminal's history",
    "terminal_location": "terminal's location",
    "customer_velocity": "card's recent transactions",
}
_STORE_FAILURE = {
    "timeout": "did not answer within the time budget",
    "error": "failed",
    "busy": "was too busy",
    "unavailable": "is not loaded",
}


def format_value(value: float, kind: Kind) -> str:
    """``value`` as a person reads it."""
    if not math.isfinite(value):
        return "unknown"
    if kind == "flag":
        return "yes" if value >= 0.5 else "no"
    if kind == "log_amount":
        return f"{math.expm1(value):,.2f}"
    if kind == "amount":
        return f"{value:,.2f}"
    if kind == "km":
        return f"{value:,.1f} km"
    if kind == "kmh":
        return f"{value:,.0f} km/h"
    if kind == "hours":
        return f"{value:.1f} h"
    if kind == "seconds":
        return _duration(value)
    if kind == "ratio":
        return f"{value:,.2f}×"
    if kind == "share":
        return f"{value:.1%}"
    return f"{value:,.0f}"


def shown(feature: str, value: float) -> str:
    """A feature's value in words: category codes by name, others by their kind."""
    vocabulary = _CODES.get(feature)
    if vocabulary is not None and math.isfinite(value):
        index = int(value)
        return vocabulary[index].replace("_", " ") if 0 <= index < len(vocabulary) else "unknown"
    return format_value(value, term(feature).kind)


def _duration(seconds: float) -> str:
    if seconds >= 30 * 86_400:
        return "none in 30 days"
    for size, unit in ((86_400, "days"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def reason_text(reason: Reason) -> str:
    """One reason code as a sentence."""
    if reason.source == "rules":
        meaning = _RULE_MEANING.get(reason.code, reason.code)
        return f"{meaning} Rule {reason.code} adds {reason.contribution:.2f} to the probability."
    entry = term(reason.feature)
    label = entry.label[0].upper() + entry.label[1:]
    value = shown(reason.feature, reason.value)
    if reason.source == "autoencoder":
        return (
            f"{label}: {value}, unusual for legitimate transactions "
            f"({reason.contribution:.0%} of the anomaly score)."
        )
    odds = math.exp(reason.contribution)
    return f"{label}: {value}. This multiplied the odds of fraud by {odds:.1f}."


def degraded_text(flag: str) -> str:
    """What a degraded flag means for this score."""
    where, _, what = flag.partition(":")
    if where == "feature_store":
        return (
            f"The feature store {_STORE_FAILURE.get(what, what)}: scored on the transaction "
            "alone, with default history."
        )
    words = _VIEW_WORDS.get(where, where.replace("_", " "))
    if what == "new_entity":
        return f"No {words} in the feature store (new): typical defaults were used."
    if what == "stale":
        return f"The {words} in the feature store is out of date: defaults were used."
    return flag


def summary(prediction: Prediction, tiers: Tiers) -> str:
    """The decision and the threshold that led to it."""
    p = prediction.fraud_probability
    action = DECISION_TEXT[prediction.decision]
    bounds = {"MEDIUM": tiers.medium, "HIGH": tiers.high, "CRITICAL": tiers.critical}
    level = prediction.risk_level
    if level == "LOW":
        why = f"below the review threshold {tiers.medium:.2f}"
    else:
        why = f"at or above the {level} threshold {bounds[level]:.2f}"
    source = "the rules fallback" if prediction.decision_source == "rules_fallback" else "the model"
    return f"{action}: {source} puts the fraud probability at {p:.3f}, {why}."


def explain(prediction: Prediction, tiers: Tiers) -> dict[str, Any]:
    """The summary, one sentence per reason and per degraded flag."""
    return {
        "summary": summary(prediction, tiers),
        "reasons": [
            {
                "code": r.code,
                "source": r.source,
                "feature": r.feature,
                "label": term(r.feature).label,
                "value": shown(r.feature, r.value),
                "contribution": r.contribution,
                "text": reason_text(r),
            }
            for r in prediction.reasons
        ],
        "degraded": [{"flag": f, "text": degraded_text(f)} for f in prediction.degraded],
    }
