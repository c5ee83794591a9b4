"""The review queue: transactions the service sent to analysts, and what they found.

Entries are added with their decisions (:meth:`RecordStore.write_decisions`'s ``queue``,
in the same transaction). An analyst claims an entry for a lease; a claim is one
conditional UPDATE, so of two analysts claiming at once exactly one wins (PostgreSQL
re-checks the condition on the row the winner committed). An expired claim can be
taken over; the claimer claiming again renews it. Only the current claimer releases or
resolves an entry, even after the lease expired as long as nobody took it over. The
lease is the caller's setting (the service's), measured from ``claimed_at``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from system_of_record.store import RecordStore

ClaimResult = Literal["claimed", "taken", "resolved", "missing"]
ReleaseResult = Literal["released", "not_yours", "missing"]
ResolveResult = Literal["resolved", "not_yours", "already", "missing"]
OUTCOMES = ("fraud", "legitimate", "unsure")
STATUSES = ("open", "claimed", "resolved")

_ITEM_COLUMNS = (
    "SELECT q.transaction_id, q.why, q.enqueued_at, q.status, q.claimed_by, q.claimed_at, "
    "q.outcome, q.decided_by, q.decided_at, q.note, d.amount, d.customer_id, d.terminal_id, "
    "d.merchant_category, d.channel, d.tx_time, d.fraud_probability, d.risk_level, "
    "d.decision, d.decision_source, d.reasons, d.rules, d.model_version "
    "FROM review_queue q LEFT JOIN decisions d ON d.transaction_id = q.transaction_id "
)
ITEMS = _ITEM_COLUMNS + "ORDER BY q.enqueued_at, q.transaction_id LIMIT %s OFFSET %s"
ITEMS_WITH_STATUS = (
    _ITEM_COLUMNS
    + "WHERE q.status = %s ORDER BY q.enqueued_at, q.transaction_id LIMIT %s OFFSET %s"
)
ITEM = _ITEM_COLUMNS + "WHERE q.transaction_id = %s"
STATE = "SELECT status, claimed_by FROM review_queue WHERE transaction_id = %s"
CLAIM = (
    "UPDATE review_queue SET status = 'claimed', claimed_by = %s, claimed_at = %s "
    "WHERE transaction_id = %s AND (status = 'open' OR (status = 'claimed' "
    "AND (claimed_by = %s OR claimed_at < %s)))"
)
RELEASE = (
    "UPDATE review_queue SET status = 'open', claimed_by = NULL, claimed_at = NULL "
    "WHERE transaction_id = %s AND status = 'claimed' AND claimed_by = %s"
)
RESOLVE = (
    "UPDATE review_queue SET status = 'resolved', outcome = %s, decided_by = %s, "
    "decided_at = %s, note = %s "
    "WHERE transaction_id = %s AND status = 'claimed' AND claimed_by = %s"
)
STATS = "SELECT status, COUNT(*), MIN(enqueued_at) FROM review_queue GROUP BY status"


@dataclass(frozen=True)
class ReviewItem:
    """A queue entry with the decision it is about (decision fields None if the decision
    is not on record)."""

    transaction_id: str
    why: str
    enqueued_at: datetime
    status: str
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: str | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    amount: float | None
    customer_id: str | None
    terminal_id: str | None
    merchant_category: str | None
    channel: str | None
    tx_time: datetime | None
    fraud_probability: float | None
    risk_level: str | None
    decision: str | None
    decision_source: str | None
    reasons: str | None
    rules: str | None
    model_version: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO text."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }


def queue_items(
    store: RecordStore, status: str | None, limit: int, offset: int = 0
) -> list[ReviewItem]:
    """Entries (all, or those with ``status``), oldest enqueued first."""
    with store.transaction() as cursor:
        if status is None:
            cursor.execute(store.sql(ITEMS), (limit, offset))
        else:
            cursor.execute(store.sql(ITEMS_WITH_STATUS), (status, limit, offset))
        rows = cursor.fetchall()
    return [_item(row) for row in rows]


def review_item(store: RecordStore, transaction_id: str) -> ReviewItem | None:
    """One entry, or None if the transaction is not in the queue."""
    with store.transaction() as cursor:
        cursor.execute(store.sql(ITEM), (transaction_id,))
        row = cursor.fetchone()
    return None if row is None else _item(row)


def claim(
    store: RecordStore, transaction_id: str, analyst: str, lease_s: float, now: datetime
) -> ClaimResult:
    """Claim an entry: ``claimed`` (also a renewal by the claimer, or a takeover of an
    expired claim), ``taken`` (someone else holds it), ``resolved`` or ``missing``."""
    expired_before = store.bind_time(now - timedelta(seconds=lease_s))
    values = (analyst, store.bind_time(now), transaction_id, analyst, expired_before)
    with store.transaction() as cursor:
        cursor.execute(store.sql(CLAIM), values)
        if cursor.rowcount == 1:
            return "claimed"
        state = _state(store, cursor, transaction_id)
    if state is None:
        return "missing"
    return "resolved" if state[0] == "resolved" else "taken"


def release(store: RecordStore, transaction_id: str, analyst: str) -> ReleaseResult:
    """Give an entry back to the queue: only its claimer can."""
    with store.transaction() as cursor:
        cursor.execute(store.sql(RELEASE), (transaction_id, analyst))
        if cursor.rowcount == 1:
            return "released"
        state = _state(store, cursor, transaction_id)
    return "missing" if state is None else "not_yours"


def resolve(
    store: RecordStore,
    transaction_id: str,
    analyst: str,
    outcome: str,
    note: str,
    now: datetime,
) -> ResolveResult:
    """Record the claimer's outcome (``fraud``, ``legitimate`` or ``unsure``)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    values = (outcome, analyst, store.bind_time(now), note, transaction_id, analyst)
    with store.transaction() as cursor:
        cursor.execute(store.sql(RESOLVE), values)
        if cursor.rowcount == 1:
            return "resolved"
        state = _state(store, cursor, transaction_id)
    if state is None:
        return "missing"
    return "already" if state[0] == "resolved" else "not_yours"


def queue_stats(store: RecordStore, now: datetime) -> dict[str, Any]:
    """Entries per status and the age of the oldest open one (None if none is open)."""
    with store.transaction() as cursor:
        cursor.execute(STATS)
        rows = cursor.fetchall()
    stats: dict[str, Any] = dict.fromkeys(STATUSES, 0) | {"oldest_open_seconds": None}
    for status, count, oldest in rows:
        stats[status] = int(count)
        if status == "open" and oldest is not None:
            stats["oldest_open_seconds"] = (now - _utc(oldest)).total_seconds()
    return stats


def _state(store: RecordStore, cursor: Any, transaction_id: str) -> tuple[str, str] | None:
    cursor.execute(store.sql(STATE), (transaction_id,))
    row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def _item(row: tuple[Any, ...]) -> ReviewItem:
    values = list(row)
    for index in (2, 5, 8, 15):  # enqueued_at, claimed_at, decided_at, tx_time
        values[index] = None if values[index] is None else _utc(values[index])
    return ReviewItem(*values)


def _utc(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
