"""The prediction audit log: every score the API answers is on disk before the answer.

One row per scored transaction (transaction id, model version, probability, risk level,
decision, decision source, degraded flags, request id, time, and the request's fields and
FeatureService), in SQLite with WAL journaling. It is also the pod's spool for the shared
system of record: :class:`~app.services.record_shipper.RecordShipper` ships rows from here
in id order and records how far it got (table ``shipped``); rows are never pruned before
they are shipped, and once ``spool_max_rows`` wait, :meth:`PredictionLog.append` refuses
(:class:`SpoolFull`, a 503) rather than take a row it could lose.

``synchronous=FULL`` (the default) fsyncs each commit, so a row survives a
power loss; ``NORMAL`` survives a killed process but not an OS crash.

An fsync costs about 0.7 ms on this machine, so writes are group-committed: requests
queue their rows, and one writer task commits everything queued so far in one
transaction on a dedicated thread, then wakes every waiter. While a commit runs, the next
group gathers. A request is answered 2xx only after its rows are committed; if the write
fails the waiter gets the exception (the API turns it into a 503), never a silent loss.
Rows older than the retention are pruned now and then, in the same writer.

A deleted or replaced file (docs/reliability.md, "Files that disappear") is noticed after
every commit, before anyone is answered: when the path no longer names the file the log
opened (:class:`~app.services.file_identity.OpenedFile`), the log reopens at the path (a
new database with the schema), records the gap in ``file_gaps`` and writes the group's
rows again there; only then are its waiters answered. :meth:`PredictionLog.check`, run
every ``FILE_CHECK_SECONDS``, does the same for an idle log and probes it with a write;
every outcome feeds :attr:`PredictionLog.health`, which ``/readyz`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

from app.services.dependency_health import CHECK_TIMEOUT_S, PROBE_SCHEMA, PROBE_WRITE, WriteHealth
from app.services.file_identity import (
    GAP_INSERT,
    GAP_SCHEMA,
    Change,
    OpenedFile,
    close_vanished,
    describe,
    note_reopen,
)

Synchronous = Literal["FULL", "NORMAL"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    fraud_probability REAL NOT NULL,
    risk_level TEXT NOT NULL,
    decision TEXT NOT NULL,
    decision_source TEXT NOT NULL,
    degraded TEXT NOT NULL,
    request_id TEXT NOT NULL,
    scored_at REAL NOT NULL,
    customer_id TEXT NOT NULL DEFAULT '',
    terminal_id TEXT NOT NULL DEFAULT '',
    tx_time REAL NOT NULL DEFAULT 0,
    amount REAL NOT NULL DEFAULT 0,
    merchant_category TEXT,
    channel TEXT NOT NULL DEFAULT '',
    entry_mode TEXT NOT NULL DEFAULT '',
    is_foreign INTEGER NOT NULL DEFAULT 0,
    distance_from_home_km REAL NOT NULL DEFAULT 0,
    feature_service TEXT NOT NULL DEFAULT '',
    model_decision TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '',
    rule_set TEXT NOT NULL DEFAULT '',
    rules TEXT NOT NULL DEFAULT '',
    features BLOB DEFAULT NULL
);
CREATE INDEX IF NOT EXISTS predictions_transaction ON predictions (transaction_id);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (scored_at);
CREATE TABLE IF NOT EXISTS shipped (log TEXT PRIMARY KEY, through INTEGER NOT NULL);
"""
# Literal statements: nothing in the SQL is built at run time.
_INSERT = (
    "INSERT INTO predictions (transaction_id, model_version, fraud_probability, risk_level, "
    "decision, decision_source, degraded, request_id, scored_at, customer_id, terminal_id, "
    "tx_time, amount, merchant_category, channel, entry_mode, is_foreign, "
    "distance_from_home_km, feature_service, model_decision, reasons, rule_set, rules, "
    "features) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# Rows acknowledged but not yet in the system of record (ids only grow: rows are never
# pruned before they are shipped).
_BACKLOG = (
    "SELECT COALESCE(MAX(id), 0) - COALESCE((SELECT through FROM shipped "
    "WHERE log = 'predictions'), 0) FROM predictions"
)
_UNSHIPPED = (
    "SELECT id, transaction_id, model_version, fraud_probability, risk_level, decision, "
    "decision_source, degraded, request_id, scored_at, customer_id, terminal_id, tx_time, "
    "amount, merchant_category, channel, entry_mode, is_foreign, distance_from_home_km, "
    "feature_service, model_decision, reasons, rule_set, rules, features "
    "FROM predictions WHERE id > COALESCE((SELECT through FROM shipped "
    "WHERE log = 'predictions'), 0) ORDER BY id LIMIT ?"
)
_MARK = (
    "INSERT INTO shipped (log, through) VALUES ('predictions', ?) "
    "ON CONFLICT (log) DO UPDATE SET through = MAX(through, excluded.through)"
)
_PRUNE = (
    "DELETE FROM predictions WHERE scored_at < ? AND id <= COALESCE((SELECT through "
    "FROM shipped WHERE log = 'predictions'), 0)"
)
PRUNE_EVERY_SECONDS = 60.0


class PredictionRecord(NamedTuple):
    """One audited answer; ``degraded`` is the answer's flags joined with commas."""

    transaction_id: str
    model_version: str
    fraud_probability: float
    risk_level: str
    decision: str
    decision_source: str
    degraded: str
    request_id: str
    scored_at: float  # epoch seconds
    customer_id: str
    terminal_id: str
    tx_time: float  # the transaction's own time, epoch seconds
    amount: float
    merchant_category: str | None
    channel: str
    entry_mode: str
    is_foreign: bool
    distance_from_home_km: float
    feature_service: str
    model_decision: str = ""  # the model's own decision, before the rule set
    reasons: str = ""  # the answer's reason codes, joined with commas
    rule_set: str = ""  # the rule set's version
    rules: str = ""  # the ids of the rules that matched, joined with commas
    features: bytes | None = None  # the FeatureService's values, float32 little-endian


def _add_request_columns(db: sqlite3.Connection) -> None:
    """Bring a log written by an older version (fewer columns) up to date."""
    have = {row[1] for row in db.execute("PRAGMA table_info(predictions)")}
    for line in _SCHEMA.splitlines():
        name = line.strip().split(" ", 1)[0]
        if "DEFAULT" in line or name == "merchant_category":
            if name not in have:
                db.execute(f"ALTER TABLE predictions ADD COLUMN {line.strip().rstrip(',')}")


class SpoolFull(Exception):
    """More acknowledged rows wait for the system of record than the spool may hold."""


class _Waiter(NamedTuple):
    records: Sequence[PredictionRecord]
    done: asyncio.Future[None]


class PredictionLog:
    """Durable, group-committed audit rows (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        synchronous: Synchronous = "FULL",
        retention_hours: float = 168.0,
        consecutive: int = 3,
        check_seconds: float = 2.0,
        spool_max_rows: int = 1_000_000,
    ) -> None:
        self.path = path
        self.retention_seconds = retention_hours * 3600
        self.check_seconds = check_seconds  # an idle log is probed after this long
        self.health = WriteHealth("audit_log", consecutive)
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = self._open()
        self._verified_at = time.time()  # the path named the open file then
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-log")
        self._checking: Future[None] | None = None
        self._waiting: list[_Waiter] = []
        self._writer: asyncio.Task[None] | None = None
        self._pruned = 0.0
        self.commits = 0
        self.spool_max_rows = spool_max_rows

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the API answers sqlite3 errors with 503
            raise sqlite3.OperationalError(f"cannot create {self.path.parent}: {exc}") from exc
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.executescript(_SCHEMA + GAP_SCHEMA + PROBE_SCHEMA)
        _add_request_columns(db)
        # Rows not yet shipped (left by an earlier process too), as of the last commit or
        # shipment.
        self.backlog = int(db.execute(_BACKLOG).fetchone()[0])
        self._file = OpenedFile(self.path)
        return db

    @property
    def spool_full(self) -> bool:
        """No room for more rows until the system of record takes some."""
        return self.backlog >= self.spool_max_rows

    async def append(self, records: Sequence[PredictionRecord]) -> None:
        """Return once ``records`` are committed; raises if they could not be written
        (:class:`SpoolFull` while the spool is full: nothing is taken that could be lost)."""
        if self.spool_full:
            raise SpoolFull(f"{self.backlog} rows wait for the system of record")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiter(records, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                rows = [record for waiter in group for record in waiter.records]
                try:
                    await loop.run_in_executor(self._pool, self.write, rows)
                except Exception as exc:  # every waiter of the group learns it
                    for waiter in group:
                        if not waiter.done.done():
                            waiter.done.set_exception(exc)
                    continue
                for waiter in group:
                    if not waiter.done.done():
                        waiter.done.set_result(None)
        finally:
            self._writer = None

    def write(self, rows: Sequence[PredictionRecord]) -> None:
        """Commit ``rows`` in one transaction into the file at the path (blocking; the
        writer thread calls it); raises if they are not there."""
        try:
            if self._db is None:  # a reopen failed: the vanished file is still unreplaced
                self._reopen("deleted", ())
            self._commit(rows)
            change = self._file.change()
            if change is not None:
                self._reopen(change, rows)
        except Exception as exc:
            self.health.observe(False, f"{type(exc).__name__}: {exc}")
            raise
        self._verified_at = time.time()
        self.health.observe(True)
        self.commits += 1
        self.backlog = int(self._connection().execute(_BACKLOG).fetchone()[0])
        now = time.time()
        if now - self._pruned >= PRUNE_EVERY_SECONDS:
            self._pruned = now
            self._connection().execute(_PRUNE, (now - self.retention_seconds,))

    def _commit(self, rows: Sequence[PredictionRecord], gap: tuple[object, ...] = ()) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            if gap:
                db.execute(GAP_INSERT, gap)
            db.executemany(_INSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _reopen(self, change: Change, rows: Sequence[PredictionRecord]) -> None:
        """Open a new file at the path, recording the gap, and write ``rows`` there."""
        vanished = self._file
        close_vanished(self._db)
        self._db = None
        self._db = self._open()
        note_reopen("audit_log", change, vanished, f"{self.path}: {len(rows)} rows re-written")
        gap = (time.time(), change, describe(vanished.ident), self._verified_at, len(rows))
        self._commit(rows, gap)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError(f"{self.path} is not open")
        return self._db

    def check(self) -> None:
        """The periodic check (any thread): reopen a vanished file, probe an idle one."""
        if self._checking is not None and not self._checking.done():
            self.health.observe(False, "the previous check has not returned (disk hung?)")
            return
        self._checking = self._pool.submit(self._check)
        with contextlib.suppress(Exception):  # _check observes its own failures
            self._checking.result(timeout=CHECK_TIMEOUT_S)
            return
        if not self._checking.done():
            self.health.observe(False, f"no check answer within {CHECK_TIMEOUT_S:g} s")

    def _check(self) -> None:
        try:
            change = "deleted" if self._db is None else self._file.change()
            if change is not None:
                self._reopen(change, ())
            elif self.health.idle_for() >= self.check_seconds:
                self._connection().execute(PROBE_WRITE, (time.time(),))
            else:
                return  # the requests' own writes are the evidence
        except Exception as exc:
            self.health.observe(False, f"{type(exc).__name__}: {exc}")
            raise
        self._verified_at = time.time()
        self.health.observe(True)

    def unshipped(self, limit: int) -> list[tuple[int, PredictionRecord]]:
        """The oldest rows not yet in the system of record, with their ids (blocking)."""
        rows = self._pool.submit(
            lambda: self._connection().execute(_UNSHIPPED, (limit,)).fetchall()
        ).result()
        return [(row[0], PredictionRecord(*row[1:])) for row in rows]

    def mark_shipped(self, through: int) -> None:
        """Rows up to id ``through`` are in the system of record (blocking)."""

        def mark() -> None:
            db = self._connection()
            db.execute(_MARK, (through,))
            self.backlog = int(db.execute(_BACKLOG).fetchone()[0])

        self._pool.submit(mark).result()

    def count(self) -> int:
        """Rows on record (read on the writer thread, between commits)."""
        query = "SELECT COUNT(*) FROM predictions"
        return int(
            self._pool.submit(lambda: self._connection().execute(query).fetchone()[0]).result()
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
