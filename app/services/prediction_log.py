"""The prediction audit log: every score the API answers is on disk before the answer.

One row per scored transaction (transaction id, model version, probability, risk level,
decision, decision source, degraded flags, request id, time), in SQLite with WAL
journaling. ``synchronous=FULL`` (the default) fsyncs each commit, so a row survives a
power loss; ``NORMAL`` survives a killed process but not an OS crash.

An fsync costs about 0.7 ms on this machine, so writes are group-committed: requests
queue their rows, and one writer task commits everything queued so far in one
transaction on a dedicated thread, then wakes every waiter. While a commit runs, the next
group gathers. A request is answered 2xx only after its rows are committed; if the write
fails the waiter gets the exception (the API turns it into a 503), never a silent loss.
Rows older than the retention are pruned now and then, in the same writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

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
    scored_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_transaction ON predictions (transaction_id);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (scored_at);
"""
_INSERT = (
    "INSERT INTO predictions (transaction_id, model_version, fraud_probability, risk_level, "
    "decision, decision_source, degraded, request_id, scored_at) VALUES (?,?,?,?,?,?,?,?,?)"
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


class _Waiter(NamedTuple):
    records: Sequence[PredictionRecord]
    done: asyncio.Future[None]


class PredictionLog:
    """Durable, group-committed audit rows (see the module docstring)."""

    def __init__(
        self, path: Path, synchronous: Synchronous = "FULL", retention_hours: float = 168.0
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention_seconds = retention_hours * 3600
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-log")
        self._waiting: list[_Waiter] = []
        self._writer: asyncio.Task[None] | None = None
        self._pruned = 0.0
        self.commits = 0

    async def append(self, records: Sequence[PredictionRecord]) -> None:
        """Return once ``records`` are committed; raises if they could not be written."""
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
        """Commit ``rows`` in one transaction (blocking; the writer thread calls it)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self.commits += 1
        now = time.time()
        if now - self._pruned >= PRUNE_EVERY_SECONDS:
            self._pruned = now
            self._db.execute(
                "DELETE FROM predictions WHERE scored_at < ?", (now - self.retention_seconds,)
            )

    def count(self) -> int:
        """Rows on record (read on the writer thread, between commits)."""
        query = "SELECT COUNT(*) FROM predictions"
        return int(self._pool.submit(lambda: self._db.execute(query).fetchone()[0]).result())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._db.close()
