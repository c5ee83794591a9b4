"""The replayed stream: read the simulator's transactions, put them in timestamp order,
turn each row into a ``/v1/predict`` body (the shared builder of
:mod:`benchmarks.transactions`), and schedule the bank's delayed labels."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import pandas as pd

from benchmarks.transactions import LABELLED_FIELDS, DataError, flag, request_body, rfc3339

REQUIRED_COLUMNS: tuple[str, ...] = LABELLED_FIELDS
_TEXT_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "customer_id",
    "terminal_id",
    "merchant_category",
    "channel",
    "entry_mode",
    "fraud_scenario",
)
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
SECONDS_PER_DAY = 86_400.0

LabelSource = Literal["chargeback", "analyst"]


def as_request(row: Any) -> dict[str, Any]:
    """The replay's ``/v1/predict`` body for a simulator row: :func:`request_body` with the
    timestamp as RFC 3339 UTC with ``Z`` (a time without a zone read as UTC)."""
    return request_body(row, timestamp=rfc3339(row.timestamp))


def read_transactions(path: Path) -> pd.DataFrame:
    """A parquet or CSV file of simulator transactions with UTC ``timestamp``s."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype=dict.fromkeys(_TEXT_COLUMNS, str), keep_default_na=False)
        for column in ("amount", "distance_from_home_km"):  # "" -> NaN -> 422 from the service
            if column in frame:
                frame[column] = pd.to_numeric(frame[column], errors="coerce")
    else:
        raise DataError(f"{path}: expected a .parquet or .csv file")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)}")
    try:
        stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unreadable timestamps ({exc})") from None
    if stamps.isna().any():
        raise DataError(f"{path}: {int(stamps.isna().sum())} rows without a timestamp")
    frame["timestamp"] = stamps
    if "fraud_scenario" not in frame:
        frame["fraud_scenario"] = "unknown"
    return frame


def select(frame: pd.DataFrame, start: pd.Timestamp | None, limit: int | None) -> pd.DataFrame:
    """Rows in timestamp order (stable: ties keep file order), from ``start`` on, at most
    ``limit`` of them."""
    ordered = frame.sort_values("timestamp", kind="stable")
    if start is not None:
        ordered = ordered[ordered["timestamp"] >= start]
    if limit is not None:
        ordered = ordered.head(limit)
    return ordered.reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One row to replay: its request body and what the summary needs to know."""

    transaction_id: str
    customer_id: str
    seconds: float  # simulated time, epoch seconds (UTC)
    day: str  # simulated UTC date, YYYY-MM-DD
    is_fraud: bool
    scenario: str
    body: bytes  # the /v1/predict JSON


def to_transactions(frame: pd.DataFrame) -> list[Transaction]:
    """The selected rows as request bodies (in the frame's order)."""
    seconds = ((frame["timestamp"] - _EPOCH) / pd.Timedelta(seconds=1)).tolist()
    days = frame["timestamp"].dt.strftime("%Y-%m-%d").tolist()
    out: list[Transaction] = []
    for row, second, day in zip(frame.itertuples(index=False), seconds, days, strict=True):
        out.append(
            Transaction(
                transaction_id=str(row.transaction_id),
                customer_id=str(row.customer_id),
                seconds=float(second),
                day=day,
                is_fraud=flag(row.is_fraud),
                scenario=str(row.fraud_scenario) or "unknown",
                body=orjson.dumps(as_request(row)),
            )
        )
    return out


def alerted(decision: str) -> bool:
    """An alert is anything but an approval (review, step-up or decline)."""
    return decision != "approve"


@dataclass(frozen=True, slots=True)
class Label:
    """Feedback the bank posts once the simulated clock reaches ``due``."""

    transaction_id: str
    is_fraud: bool
    source: LabelSource
    due: float  # simulated epoch seconds

    def body(self) -> bytes:
        """The ``/v1/feedback`` JSON (``FeedbackIn``)."""
        return orjson.dumps(
            {
                "transaction_id": self.transaction_id,
                "is_fraud": self.is_fraud,
                "source": self.source,
            }
        )


class LabelSchedule:
    """The bank's feedback policy on a simulated clock.

    Every fraud gets a ``chargeback`` label (is_fraud true) ``delay`` after it happened,
    known from the moment it is sent; every alerted legitimate transaction gets an
    ``analyst`` label (is_fraud false) ``delay`` after it happened, known once its answer
    arrives. A label is due when the clock reaches its time (``due <= clock``).
    """

    def __init__(self, delay_seconds: float) -> None:
        self.delay = delay_seconds
        self._heap: list[tuple[float, int, Label]] = []
        self._seq = 0

    def _add(self, tx: Transaction, is_fraud: bool, source: LabelSource) -> None:
        label = Label(tx.transaction_id, is_fraud, source, tx.seconds + self.delay)
        heapq.heappush(self._heap, (label.due, self._seq, label))
        self._seq += 1

    def on_sent(self, tx: Transaction) -> None:
        if tx.is_fraud:
            self._add(tx, True, "chargeback")

    def on_answered(self, tx: Transaction, decision: str) -> None:
        if not tx.is_fraud and alerted(decision):
            self._add(tx, False, "analyst")

    def pop_due(self, clock: float) -> list[Label]:
        """The labels due at simulated time ``clock``, oldest first; they leave the queue."""
        out: list[Label] = []
        while self._heap and self._heap[0][0] <= clock:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def count(self, clock: float) -> tuple[int, int]:
        """Labels still queued: (due by ``clock``, not yet due)."""
        due = sum(1 for d, _, _ in self._heap if d <= clock)
        return due, len(self._heap) - due
