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


class LabelRow(NamedTuple):
    """A confirmed label as the service received it."""

    transaction_id: str
    is_fraud: bool
    source: str
    received_at: datetime  # when the service received it (UTC)


DECISION_COLUMNS: tuple[str, ...] = DecisionRow._fields
LABEL_COLUMNS: tuple[str, ...] = LabelRow._fields
