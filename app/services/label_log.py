"""The feedback label log: confirmed labels for retraining, kept durably in SQLite.

WAL mode with ``synchronous=FULL``: a label is on disk before the API answers 2xx, and a
killed process never leaves a half-written row. One label per transaction id: repeating
the same label is a no-op (``duplicate``); a different label for a known id is kept in the
``label_conflicts`` table for review (``conflict``) and never overwrites the first one.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

FeedbackStatus = Literal["recorded", "duplicate", "conflict"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    transaction_id TEXT PRIMARY KEY,
    is_fraud INTEGER NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS label_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL,
    is_fraud INTEGER NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""


# One literal statement per table: nothing in the SQL is built at run time.
_INSERT = {
    "labels": (
        "INSERT INTO labels (transaction_id, is_fraud, source, received_at) VALUES (?, ?, ?, ?)"
    ),
    "label_conflicts": (
        "INSERT INTO label_conflicts (transaction_id, is_fraud, source, received_at) "
        "VALUES (?, ?, ?, ?)"
    ),
}


class LabelLog:
    """Append-only, idempotent label store (safe to share between threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def record(self, transaction_id: str, is_fraud: bool, source: str) -> FeedbackStatus:
        """Store a label; says whether it was new, a repeat, or a conflicting repeat."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT is_fraud FROM labels WHERE transaction_id = ?", (transaction_id,)
                ).fetchone()
                if row is None:
                    status: FeedbackStatus = "recorded"
                    table = "labels"
                elif bool(row[0]) == is_fraud:
                    self._db.execute("ROLLBACK")
                    return "duplicate"
                else:
                    status, table = "conflict", "label_conflicts"
                self._db.execute(_INSERT[table], (transaction_id, int(is_fraud), source, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return status

    def label(self, transaction_id: str) -> bool | None:
        """The first confirmed label of a transaction, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT is_fraud FROM labels WHERE transaction_id = ?", (transaction_id,)
            ).fetchone()
        return None if row is None else bool(row[0])

    def counts(self) -> dict[str, int]:
        with self._lock:
            labels = self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
            conflicts = self._db.execute("SELECT COUNT(*) FROM label_conflicts").fetchone()[0]
        return {"labels": int(labels), "conflicts": int(conflicts)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
