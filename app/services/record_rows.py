"""The system of record's rows for what the pod spooled, and which go to review."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from app.services.prediction_log import PredictionRecord
from app.services.shadow import ShadowResult
from app.services.shadow_log import ShadowRecord
from system_of_record.rows import DecisionRow, ShadowRow


def decision_row(record: PredictionRecord) -> DecisionRow:
    """The system of record's row for an audited answer."""
    return DecisionRow(
        record.transaction_id,
        record.customer_id,
        record.terminal_id,
        datetime.fromtimestamp(record.tx_time, UTC),
        record.amount,
        record.merchant_category,
        record.channel,
        record.entry_mode,
        bool(record.is_foreign),
        record.distance_from_home_km,
        record.feature_service,
        record.model_version,
        record.fraud_probability,
        record.risk_level,
        record.decision,
        record.decision_source,
        record.degraded,
        record.request_id,
        datetime.fromtimestamp(record.scored_at, UTC),
        record.model_decision,
        record.reasons,
        record.rule_set,
        record.rules,
        record.features,
    )


def review_reason(record: PredictionRecord, sample_rate: float) -> str | None:
    """Why the review queue takes this decision: ``review`` (the decision), ``sample``
    (a share ``sample_rate`` of the others, chosen by transaction id so that every pod
    and every re-shipment picks the same ones), or None."""
    if record.decision == "review":
        return "review"
    if sample_rate > 0:
        digest = hashlib.blake2b(record.transaction_id.encode(), digest_size=4).digest()
        if int.from_bytes(digest, "big") < sample_rate * 2**32:
            return "sample"
    return None


def shadow_row(record: ShadowRecord) -> ShadowRow:
    """The system of record's row for a challenger's shadow score."""
    return ShadowRow(
        record.transaction_id,
        record.challenger_version,
        record.champion_version,
        record.fraud_probability,
        record.risk_level,
        record.decision,
        datetime.fromtimestamp(record.scored_at, UTC),
    )


def shadow_record(result: ShadowResult) -> ShadowRecord:
    """The spool's row for a challenger's score."""
    return ShadowRecord(
        result.transaction_id,
        result.challenger_version,
        result.champion_version,
        result.fraud_probability,
        result.risk_level,
        result.decision,
        result.scored_at.timestamp(),
    )
