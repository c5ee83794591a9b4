"""The challenger's shadow scores, spooled for the system of record.

A shadow score is written after the answer, by the shadow thread
(:mod:`app.services.shadow`), into a SQLite file of its own beside the audit log (so it
never takes the audit log's write lock from under a request), then shipped with the
decisions by :class:`~app.services.record_shipper.RecordShipper` (table
``shadow_scores``, joined with ``decisions`` by transaction id). Nothing here was
acknowledged to a caller, so the file is written with ``synchronous=NORMAL``: a killed
process loses nothing committed, an OS crash may lose the last scores. Shipped rows
older than the retention are pruned.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadow_scores (
    id INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    challenger_version TEXT NOT NULL,
    champion_version TEXT NOT NULL,
    fraud_probability REAL NOT NULL,
    risk_level TEXT NOT NULL,
    decision TEXT NOT NULL,
    scored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shipped (log TEXT PRIMARY KEY, through INTEGER NOT NULL);
"""
_INSERT = (
    "INSERT INTO shadow_scores (transaction_id, challenger_version, champion_version, "
    "fraud_probability, risk_level, decision, scored_at) VALUES (?,?,?,?,?,?,?)"
)
_UNSHIPPED = (
    "SELECT id, transaction_id, challenger_version, champion_version, fraud_probability, "
    "risk_level, decision, scored_at FROM shadow_scores "
    "WHERE id > COALESCE((SELECT through FROM shipped WHERE log = 'shadow_scores'), 0) "
    "ORDER BY id LIMIT ?"
)
_MARK = (
    "INSERT INTO shipped (log, through) VALUES ('shadow_scores', ?) "
    "ON CONFLICT (log) DO UPDATE SET through = MAX(through, excluded.through)"
)
_PRUNE = (
    "DELETE FROM shadow_scores WHERE scored_at < ? AND id <= COALESCE((SELECT through "
    "FROM shipped WHERE log = 'shadow_scores'), 0)"
)
_BACKLOG = (
    "SELECT COALESCE(MAX(id), 0) - COALESCE((SELECT through FROM shipped "
    "WHERE log = 'shadow_scores'), 0) FROM shadow_scores"
)


class ShadowRecord(NamedTuple):
    """One challenger score of a transaction the champion answered."""

    transaction_id: str
    challenger_version: str
    champion_version: str
    fraud_probability: float
    risk_level: str
    decision: str
    scored_at: float  # epoch seconds


class ShadowLog:
    """The spool of shadow scores (see the module docstring); any thread may call it."""

    def __init__(self, path: Path, retention_hours: float = 168.0) -> None:
        self.path = path
        self.retention_seconds = retention_hours * 3600
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def append(self, records: Sequence[ShadowRecord]) -> None:
        """Commit ``records`` in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_INSERT, records)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def unshipped(self, limit: int) -> list[tuple[int, ShadowRecord]]:
        """The oldest scores not yet in the system of record, with their ids."""
        with self._lock:
            rows = self._db.execute(_UNSHIPPED, (limit,)).fetchall()
        return [(row[0], ShadowRecord(*row[1:])) for row in rows]

    def mark_shipped(self, through: int) -> None:
        """Scores up to id ``through`` are in the system of record; prune old ones."""
        with self._lock:
            self._db.execute(_MARK, (through,))
            self._db.execute(_PRUNE, (time.time() - self.retention_seconds,))

    def backlog(self) -> int:
        with self._lock:
            return int(self._db.execute(_BACKLOG).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
