"""Open the system of record by URL and write to it, idempotently.

``postgresql://user@host:port/db`` (psycopg 3; the password comes from a file, a mounted
Secret, never from the URL) or ``sqlite:///path`` (the embedded default). A store holds
one connection and is used by one thread at a time; every method runs in one transaction
and reconnects after a broken connection on the next call.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from system_of_record.rows import DecisionRow, LabelRow
from system_of_record.schema import Dialect, prepare

LabelStatus = Literal["recorded", "duplicate", "conflict"]
JOBS = ("features", "materialize", "retrain")

# Literal statements (PostgreSQL's placeholders; SQLite's are swapped in): nothing in the
# SQL is built at run time.
INSERT_DECISION = (
    "INSERT INTO decisions (transaction_id, customer_id, terminal_id, tx_time, amount, "
    "merchant_category, channel, entry_mode, is_foreign, distance_from_home_km, "
    "feature_service, model_version, fraud_probability, risk_level, decision, "
    "decision_source, degraded, request_id, scored_at, model_decision, reasons, rule_set, "
    "rules, features) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (transaction_id) DO NOTHING"
)
ENQUEUE_REVIEW = (
    "INSERT INTO review_queue (transaction_id, why, enqueued_at, status) "
    "VALUES (%s,%s,%s,'open') ON CONFLICT (transaction_id) DO NOTHING"
)
INSERT_LABEL = (
    "INSERT INTO labels (transaction_id, is_fraud, source, received_at) "
    "VALUES (%s,%s,%s,%s) ON CONFLICT (transaction_id) DO NOTHING"
)
INSERT_CONFLICT = (
    "INSERT INTO label_conflicts (transaction_id, is_fraud, source, received_at) "
    "VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING"
)
LABEL_OF = "SELECT is_fraud FROM labels WHERE transaction_id = %s"
COUNTS = (
    "SELECT (SELECT COUNT(*) FROM decisions), (SELECT COUNT(*) FROM labels), "
    "(SELECT COUNT(*) FROM label_conflicts), (SELECT COUNT(*) FROM job_runs)"
)
TABLES = ("decisions", "labels", "label_conflicts", "job_runs")


class RecordUnavailable(Exception):
    """The database cannot be reached or refused the write; nothing was committed."""


@dataclass(frozen=True)
class RecordTarget:
    """Where the system of record lives: a dialect and how to connect."""

    dialect: Dialect
    location: str  # a psycopg conninfo URL, or a SQLite file path
    password: str | None = None
    connect_timeout_s: float = 3.0

    @classmethod
    def parse(
        cls, url: str, password_file: Path | None = None, connect_timeout_s: float = 3.0
    ) -> RecordTarget:
        """A target from ``postgresql://...`` or ``sqlite:///path``; refuses other URLs
        and passwords written into the URL."""
        parts = urlsplit(url)
        if parts.scheme == "sqlite":  # sqlite:///relative/path, sqlite:////absolute/path
            path = url.removeprefix("sqlite:///")
            if not path or path == url:
                raise ValueError("a sqlite URL needs a path: sqlite:///var/record.sqlite")
            return cls("sqlite", path)
        if parts.scheme in ("postgresql", "postgres"):
            if parts.password:
                raise ValueError("put the database password in a file, not in the URL")
            password = password_file.read_text().strip() if password_file else None
            return cls("postgresql", url, password, connect_timeout_s)
        raise ValueError(f"unsupported system-of-record URL scheme {parts.scheme!r}")

    def describe(self) -> str:
        """The target without secrets, for logs."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.location}"
        parts = urlsplit(self.location)
        return (
            f"postgresql://{parts.username or ''}@{parts.hostname}:{parts.port or 5432}{parts.path}"
        )


class RecordStore:
    """Idempotent writes and the reads the jobs need (see the module docstring)."""

    def __init__(self, target: RecordTarget) -> None:
        self.target = target
        self._connection: Any = None
        self._schema_ready = False

    @property
    def dialect(self) -> Dialect:
        return self.target.dialect

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = Path(self.target.location)
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, check_same_thread=False, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            return connection
        import psycopg  # only the PostgreSQL store needs it

        return psycopg.connect(
            self.target.location,
            password=self.target.password,
            connect_timeout=max(1, round(self.target.connect_timeout_s)),
            application_name="fraud-system-of-record",
        )

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction; any database error is ``RecordUnavailable``."""
        errors = _database_errors()
        try:
            if self._connection is None:
                self._connection = self._connect()
            cursor = self._connection.cursor()
            try:
                if not self._schema_ready:
                    prepare(cursor, self.dialect)
                    self._schema_ready = True
                yield cursor
                self._connection.commit()
            except BaseException:
                self._rollback()
                raise
            finally:
                cursor.close()
        except errors as exc:
            self.close()  # reconnect on the next call
            raise RecordUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc

    def _rollback(self) -> None:
        try:
            self._connection.rollback()
        except Exception:  # the connection is gone: close() follows
            pass

    def sql(self, text: str) -> str:
        """A statement written with PostgreSQL's ``%s`` placeholders, in this dialect."""
        return text.replace("%s", "?") if self.dialect == "sqlite" else text

    def bind_time(self, moment: datetime) -> Any:
        """A UTC time as this dialect's driver takes it (ISO text for SQLite)."""
        return moment.astimezone(UTC).isoformat() if self.dialect == "sqlite" else moment

    def write_decisions(
        self, rows: Sequence[DecisionRow], queue: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Record scored transactions (an id already on record keeps its first row) and,
        in the same transaction, put ``queue``'s ``(transaction_id, why)`` pairs in the
        review queue (an id already queued keeps its entry), enqueued at the row's
        ``scored_at`` (now for an id not among ``rows``)."""
        if not rows and not queue:
            return
        values = [
            row._replace(
                tx_time=self.bind_time(row.tx_time), scored_at=self.bind_time(row.scored_at)
            )
            for row in rows
        ]
        scored = {row.transaction_id: row.scored_at for row in values} if queue else {}
        now = self.bind_time(datetime.now(UTC))
        reviews = [(tx, why, scored.get(tx, now)) for tx, why in queue]
        with self.transaction() as cursor:
            if values:
                cursor.executemany(self.sql(INSERT_DECISION), values)
            if reviews:
                cursor.executemany(self.sql(ENQUEUE_REVIEW), reviews)

    def write_labels(self, rows: Sequence[LabelRow]) -> list[LabelStatus]:
        """Record labels: new (``recorded``), the same again (``duplicate``) or a
        different one for a known id (``conflict``, kept apart, never applied)."""
        insert, known, conflict = map(self.sql, (INSERT_LABEL, LABEL_OF, INSERT_CONFLICT))
        statuses: list[LabelStatus] = []
        with self.transaction() as cursor:
            for row in rows:
                value = row._replace(received_at=self.bind_time(row.received_at))
                cursor.execute(insert, value)
                if cursor.rowcount == 1:
                    statuses.append("recorded")
                    continue
                cursor.execute(known, (row.transaction_id,))
                (stored,) = cursor.fetchone()
                if bool(stored) == row.is_fraud:
                    statuses.append("duplicate")
                else:
                    cursor.execute(conflict, value)
                    statuses.append("conflict")
        return statuses

    def insert_labels(self, rows: Sequence[LabelRow]) -> None:
        """Bulk-load labels with no per-row status (a history backfill): a known id keeps
        the label on record."""
        statement = self.sql(INSERT_LABEL)
        values = [row._replace(received_at=self.bind_time(row.received_at)) for row in rows]
        with self.transaction() as cursor:
            cursor.executemany(statement, values)

    def record_job_run(
        self, job: str, status: str, started: datetime, finished: datetime, detail: dict[str, Any]
    ) -> None:
        """Record one run of a pipeline job (what the alert rules watch)."""
        statement = self.sql(
            "INSERT INTO job_runs (job, status, started_at, finished_at, detail) "
            "VALUES (%s,%s,%s,%s,%s)"
        )
        values = (
            job,
            status,
            self.bind_time(started),
            self.bind_time(finished),
            json.dumps(detail),
        )
        with self.transaction() as cursor:
            cursor.execute(statement, values)

    def last_successes(self) -> dict[str, float]:
        """Epoch seconds of each job's newest successful run."""
        statement = (
            "SELECT job, MAX(finished_at) FROM job_runs WHERE status = 'succeeded' GROUP BY job"
        )
        with self.transaction() as cursor:
            cursor.execute(statement)
            rows = cursor.fetchall()
        return {job: _epoch(finished) for job, finished in rows}

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        with self.transaction() as cursor:
            cursor.execute(COUNTS)
            counts = cursor.fetchone()
        return {table: int(n) for table, n in zip(TABLES, counts, strict=True)}

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
                self._schema_ready = False


def open_store(url: str, password_file: Path | None = None, timeout_s: float = 3.0) -> RecordStore:
    """The store at ``url`` (connects lazily, on the first call)."""
    return RecordStore(RecordTarget.parse(url, password_file, timeout_s))


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    try:
        import psycopg
    except ImportError:
        return errors
    return (*errors, psycopg.Error)
