"""The rows of the system of record, as the service and the jobs hand them over."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class DecisionRow(NamedTuple):
    """One scored transaction: the request's fields and what the service answered."""

    transaction_id: str
    customer_id: str
    terminal_id: str
    tx_time: datetime  # the transaction's own time (UTC)
    amount: float
    merchant_category: str | None
    channel: str
    entry_mode: str
    is_foreign: bool
    distance_from_home_km: float
    feature_service: str
    model_version: str
    fraud_probability: float | None  # None for history loaded without a score
    risk_level: str
    decision: str
    decision_source: str
    degraded: str  # the answer's flags joined with commas
    request_id: str
    scored_at: datetime  # when the service answered (UTC)
    # Issue 27: trailing with defaults so positional callers of the 19 fields still work.
    model_decision: str = ""  # the model's own decision, before the rules
    reasons: str = ""  # the answer's reason codes joined with commas
    rule_set: str = ""  # the rule set's label (rule_set_version)
    rules: str = ""  # the matched rule ids joined with commas
    features: bytes | None = None  # FeatureService values, float32 little-endian, in order


class LabelRow(NamedTuple):
    """A confirmed label as the service received it."""

    transaction_id: str
    is_fraud: bool
    source: str
    received_at: datetime  # when the service received it (UTC)


class ShadowRow(NamedTuple):
    """A challenger model's score of a transaction the champion decided."""

    transaction_id: str
    challenger_version: str
    champion_version: str
    fraud_probability: float
    risk_level: str
    decision: str
    scored_at: datetime  # when the challenger scored it (UTC)


DECISION_COLUMNS: tuple[str, ...] = DecisionRow._fields
LABEL_COLUMNS: tuple[str, ...] = LabelRow._fields
SHADOW_COLUMNS: tuple[str, ...] = ShadowRow._fields
