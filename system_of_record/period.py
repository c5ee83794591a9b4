"""A recorded period of decisions, column-wise, for dry-runs of rule sets.

:func:`read_period` reads the decisions whose transaction time is in ``[since, until)``
with their labels: the newest ``limit`` of them when there are more (``truncated``),
returned oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from system_of_record.store import RecordStore

FloatArray = npt.NDArray[np.float64]

PERIOD = (
    "SELECT d.transaction_id, d.tx_time, d.customer_id, d.terminal_id, d.amount, "
    "d.merchant_category, d.channel, d.entry_mode, d.is_foreign, d.distance_from_home_km, "
    "d.feature_service, d.model_version, d.fraud_probability, d.risk_level, d.decision, "
    "d.model_decision, d.decision_source, d.rules, d.rule_set, d.features, "
    "CASE WHEN l.is_fraud IS NULL THEN -1 WHEN l.is_fraud THEN 1 ELSE 0 END "
    "FROM decisions d LEFT JOIN labels l ON l.transaction_id = d.transaction_id "
    "WHERE d.tx_time >= %s AND d.tx_time < %s "
    "ORDER BY d.tx_time DESC, d.transaction_id DESC LIMIT %s"
)


@dataclass(frozen=True)
class RecordedPeriod:
    """Decisions as columns (one entry per row, oldest first); ``fraud_probability`` is
    NaN for a decision recorded without a score, ``label`` 1 fraud, 0 legit, -1 unknown."""

    transaction_id: list[str]
    tx_time: list[datetime]
    customer_id: list[str]
    terminal_id: list[str]
    amount: FloatArray
    merchant_category: list[str | None]
    channel: list[str]
    entry_mode: list[str]
    is_foreign: FloatArray  # 1.0 / 0.0, as the rules read it
    distance_from_home_km: FloatArray
    feature_service: list[str]
    model_version: list[str]
    fraud_probability: FloatArray
    risk_level: list[str]
    decision: list[str]
    model_decision: list[str]
    decision_source: list[str]
    rules: list[str]
    rule_set: list[str]
    features: list[bytes | None]
    label: npt.NDArray[np.int8]
    truncated: bool

    def __len__(self) -> int:
        return len(self.transaction_id)


def read_period(store: RecordStore, since: datetime, until: datetime, limit: int) -> RecordedPeriod:
    """Decisions with ``since <= tx_time < until``, at most the newest ``limit``."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    values = (store.bind_time(since), store.bind_time(until), limit + 1)
    with store.transaction() as cursor:
        cursor.execute(store.sql(PERIOD), values)
        rows = cursor.fetchall()
    truncated = len(rows) > limit
    rows = rows[:limit][::-1]
    columns: list[tuple[Any, ...]] = (
        list(zip(*rows, strict=True)) if rows else [() for _ in range(21)]
    )
    (tx, when, customer, terminal, amount, category, channel, entry, foreign, distance,
     service, model, probability, level, decision, model_decision, source, rules, rule_set,
     features, label) = columns  # fmt: skip
    return RecordedPeriod(
        transaction_id=list(tx),
        tx_time=[_utc(moment) for moment in when],
        customer_id=list(customer),
        terminal_id=list(terminal),
        amount=np.asarray(amount, dtype=np.float64),
        merchant_category=list(category),
        channel=list(channel),
        entry_mode=list(entry),
        is_foreign=np.asarray([bool(value) for value in foreign], dtype=np.float64),
        distance_from_home_km=np.asarray(distance, dtype=np.float64),
        feature_service=list(service),
        model_version=list(model),
        fraud_probability=np.asarray(
            [np.nan if p is None else p for p in probability], dtype=np.float64
        ),
        risk_level=list(level),
        decision=list(decision),
        model_decision=list(model_decision),
        decision_source=list(source),
        rules=list(rules),
        rule_set=list(rule_set),
        features=[None if blob is None else bytes(blob) for blob in features],
        label=np.asarray(label, dtype=np.int8),
        truncated=truncated,
    )


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
