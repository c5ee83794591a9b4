"""Move history in and out of the system of record in bulk.

- :func:`export_history`: the feature job's input. Every decision of the chosen days with
  its label (NULL until one has arrived) as a Parquet dataset partitioned by the
  transaction's UTC date, ``<out>/transactions/date=YYYY-MM-DD/part-0.parquet``. Each day
  is read with its own query and replaces its partition whole (written beside it, then
  renamed), so a rerun picks up late labels and a failed run leaves the old partition.
  Exporting to files rather than letting Spark read over JDBC keeps the heavy scans off
  the transactional database and lets the feature job rerun without touching it
  (docs/architecture.md, "The data loop").
- :func:`backfill`: loads a transaction history (the simulator's data set) as decisions
  without a score and labels received ``label_delay`` after each transaction, the way a
  deployment would migrate the history it starts from.
- :func:`mature_labels`: the training labels a retraining may use as of a time: a label
  on record, or "legitimate" for a transaction older than the label delay with no
  chargeback; younger unlabelled transactions are left out (not known yet).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from system_of_record.rows import DecisionRow, LabelRow
from system_of_record.store import RecordStore

EXPORT_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()),
        ("terminal_id", pa.string()),
        ("amount", pa.float64()),
        ("merchant_category", pa.string()),
        ("channel", pa.string()),
        ("entry_mode", pa.string()),
        ("is_foreign", pa.bool_()),
        ("distance_from_home_km", pa.float64()),
        ("is_fraud", pa.int8()),
        ("label_received_at", pa.timestamp("us", tz="UTC")),
    ]
)
_DAY_QUERY = (
    "SELECT d.transaction_id, d.tx_time, d.customer_id, d.terminal_id, d.amount, "
    "d.merchant_category, d.channel, d.entry_mode, d.is_foreign, d.distance_from_home_km, "
    "l.is_fraud, l.received_at FROM decisions d LEFT JOIN labels l "
    "ON l.transaction_id = d.transaction_id "
    "WHERE d.tx_time >= %s AND d.tx_time < %s ORDER BY d.tx_time, d.transaction_id"
)
FETCH_ROWS = 50_000


def newest_day(store: RecordStore) -> date | None:
    """The UTC date of the newest transaction on record."""
    with store.transaction() as cursor:
        cursor.execute("SELECT MAX(tx_time) FROM decisions")
        (newest,) = cursor.fetchone()
    return None if newest is None else _utc(newest).date()


def export_history(
    store: RecordStore, out: Path, days: int, end: date | None = None
) -> dict[str, int]:
    """Export the ``days`` days up to ``end`` (default: the newest day on record); returns
    rows per day written."""
    end = end or newest_day(store)
    if end is None:
        return {}
    target = out / "transactions"
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for offset in range(days - 1, -1, -1):
        day = end - timedelta(days=offset)
        table = _day_table(store, day)
        if table.num_rows:
            _replace_partition(target / f"date={day.isoformat()}", table)
            written[day.isoformat()] = table.num_rows
    return written


def _day_table(store: RecordStore, day: date) -> pa.Table:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    bounds = (store.bind_time(start), store.bind_time(start + timedelta(days=1)))
    batches = []
    with store.transaction() as cursor:
        cursor.execute(store.sql(_DAY_QUERY), bounds)
        while rows := cursor.fetchmany(FETCH_ROWS):
            batches.append(_to_arrow(rows))
    return pa.concat_tables(batches) if batches else EXPORT_SCHEMA.empty_table()


def _to_arrow(rows: list[tuple[object, ...]]) -> pa.Table:
    frame = pd.DataFrame(rows, columns=EXPORT_SCHEMA.names)
    for column in ("timestamp", "label_received_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["is_fraud"] = frame["is_fraud"].astype("Int8")
    frame["is_foreign"] = frame["is_foreign"].astype(bool)
    return pa.Table.from_pandas(frame, schema=EXPORT_SCHEMA, preserve_index=False)


def _replace_partition(directory: Path, table: pa.Table) -> None:
    staging = directory.with_name(f".{directory.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pq.write_table(table, staging / "part-0.parquet")
    retired = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)


def backfill(
    store: RecordStore,
    transactions: pd.DataFrame,
    label_delay: timedelta,
    labels_until: datetime | None = None,
    batch: int = 20_000,
) -> tuple[int, int]:
    """Load a labelled history (simulator columns) as unscored decisions and the labels
    received by ``labels_until`` (each ``label_delay`` after its transaction; default:
    all); idempotent. Returns the decisions and labels offered."""
    stamps = pd.to_datetime(transactions["timestamp"], utc=True)
    now = datetime.now(UTC)
    labelled = 0
    for start in range(0, len(transactions), batch):
        part = transactions.iloc[start : start + batch]
        times = stamps.iloc[start : start + batch]
        store.write_decisions(list(_history_decisions(part, times, now)))
        labels = [
            LabelRow(str(t), bool(f), "history", (when + label_delay).to_pydatetime())
            for t, f, when in zip(part["transaction_id"], part["is_fraud"], times, strict=True)
        ]
        if labels_until is not None:
            labels = [label for label in labels if label.received_at <= labels_until]
        store.insert_labels(labels)
        labelled += len(labels)
    return len(transactions), labelled


def _history_decisions(
    part: pd.DataFrame, times: pd.Series, now: datetime
) -> Iterable[DecisionRow]:
    category = [None if pd.isna(c) else str(c) for c in part["merchant_category"]]
    rows: Iterable[Any] = part.itertuples(index=False)
    for row, when, cat in zip(rows, times, category, strict=True):
        yield DecisionRow(
            str(row.transaction_id), str(row.customer_id), str(row.terminal_id),
            when.to_pydatetime(), float(row.amount), cat,
            str(row.channel), str(row.entry_mode), bool(row.is_foreign),
            float(row.distance_from_home_km), "history", "history", None, "history",
            "history", "history", "", "backfill", now,
        )  # fmt: skip


def _utc(value: object) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def mature_labels(
    export: pd.DataFrame, as_of: pd.Timestamp, label_delay: pd.Timedelta
) -> pd.DataFrame:
    """Rows of an export taken at ``as_of`` whose label is known (see the module
    docstring), with ``is_fraud`` filled in as int8. Every label in the export is known by
    then: its receipt time is the service's clock, which a replay of simulated days does
    not share, so it is not compared with ``as_of``."""
    known = export["is_fraud"].notna()
    matured = export["timestamp"] + label_delay <= as_of
    rows = export[known | matured].copy()
    fraud = rows["is_fraud"].where(known[known | matured], 0)
    rows["is_fraud"] = fraud.fillna(0).astype("int8")
    return rows
