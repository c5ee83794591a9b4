"""The feedback label log: confirmed labels for retraining, kept durably in SQLite.

WAL mode with ``synchronous=FULL``: a label is on disk before the API answers 2xx, and a
killed process never leaves a half-written row. One label per transaction id: repeating
the same label is a no-op (``duplicate``); a different label for a known id is kept in the
``label_conflicts`` table for review (``conflict``) and never overwrites the first one.

A deleted or replaced file is noticed after every label, before the answer: the log then
reopens at the path (recording the gap in ``file_gaps``) and records the label again
there, so the answer describes the file at the path. :meth:`LabelLog.check` does the same
for an idle log and probes it with a write; outcomes feed :attr:`LabelLog.health`
(docs/reliability.md, "Files that disappear").
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

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
CREATE TABLE IF NOT EXISTS shipped (log TEXT PRIMARY KEY, through INTEGER NOT NULL);
"""
# What the shipper reads, oldest first: labels by rowid, then conflicts whose first label
# has been shipped (so the system of record sees the two in the order this pod did).
_UNSHIPPED_LABELS = (
    "SELECT rowid, transaction_id, is_fraud, source, received_at FROM labels "
    "WHERE rowid > COALESCE((SELECT through FROM shipped WHERE log = 'labels'), 0) "
    "ORDER BY rowid LIMIT ?"
)
_UNSHIPPED_CONFLICTS = (
    "SELECT c.id, c.transaction_id, c.is_fraud, c.source, c.received_at, l.rowid "
    "FROM label_conflicts c JOIN labels l USING (transaction_id) "
    "WHERE c.id > COALESCE((SELECT through FROM shipped WHERE log = 'label_conflicts'), 0) "
    "ORDER BY c.id LIMIT ?"
)
_THROUGH = "SELECT COALESCE((SELECT through FROM shipped WHERE log = ?), 0)"
_MARK = (
    "INSERT INTO shipped (log, through) VALUES (?, ?) "
    "ON CONFLICT (log) DO UPDATE SET through = MAX(through, excluded.through)"
)
_BACKLOG = (
    "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM labels) "
    "- COALESCE((SELECT through FROM shipped WHERE log = 'labels'), 0), "
    "(SELECT COALESCE(MAX(id), 0) FROM label_conflicts) "
    "- COALESCE((SELECT through FROM shipped WHERE log = 'label_conflicts'), 0)"
)
ShippedLabel = tuple[str, bool, str, str]  # transaction id, is_fraud, source, received_at


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

    def __init__(self, path: Path, consecutive: int = 3, check_seconds: float = 2.0) -> None:
        self.path = path
        self.check_seconds = check_seconds  # an idle log is probed after this long
        self.health = WriteHealth("label_log", consecutive)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = self._open()
        self._verified_at = time.time()  # the path named the open file then

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the API answers sqlite3 errors with 503
            raise sqlite3.OperationalError(f"cannot create {self.path.parent}: {exc}") from exc
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA + GAP_SCHEMA + PROBE_SCHEMA)
        self._file = OpenedFile(self.path)
        return db

    def record(self, transaction_id: str, is_fraud: bool, source: str) -> FeedbackStatus:
        """Store a label; says whether it was new, a repeat, or a conflicting repeat."""
        with self._lock:
            try:
                if self._db is None:  # a reopen failed: the vanished file is unreplaced
                    self._reopen("deleted")
                status = self._record_once(transaction_id, is_fraud, source)
                change = self._file.change()
                if change is not None:  # the answer must describe the file at the path
                    self._reopen(change)
                    status = self._record_once(transaction_id, is_fraud, source)
            except sqlite3.Error as exc:
                self.health.observe(False, f"{type(exc).__name__}: {exc}")
                raise
            self._verified_at = time.time()
            self.health.observe(True)
        return status

    def _record_once(self, transaction_id: str, is_fraud: bool, source: str) -> FeedbackStatus:
        db = self._connection()
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT is_fraud FROM labels WHERE transaction_id = ?", (transaction_id,)
            ).fetchone()
            if row is None:
                status: FeedbackStatus = "recorded"
                table = "labels"
            elif bool(row[0]) == is_fraud:
                db.execute("ROLLBACK")
                return "duplicate"
            else:
                status, table = "conflict", "label_conflicts"
            db.execute(_INSERT[table], (transaction_id, int(is_fraud), source, now))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return status

    def _reopen(self, change: Change) -> None:
        """Open a new file at the path (the lock held) and record the gap in it."""
        vanished = self._file
        close_vanished(self._db)
        self._db = None
        self._db = self._open()
        note_reopen("label_log", change, vanished, str(self.path))
        gap = (time.time(), change, describe(vanished.ident), self._verified_at, 0)
        self._db.execute(GAP_INSERT, gap)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError(f"{self.path} is not open")
        return self._db

    def check(self) -> None:
        """The periodic check (any thread): reopen a vanished file, probe an idle one."""
        if not self._lock.acquire(timeout=CHECK_TIMEOUT_S):
            self.health.observe(False, f"busy for over {CHECK_TIMEOUT_S:g} s (disk hung?)")
            return
        try:
            change = "deleted" if self._db is None else self._file.change()
            if change is not None:
                self._reopen(change)
            elif self.health.idle_for() >= self.check_seconds:
                self._connection().execute(PROBE_WRITE, (time.time(),))
            else:
                return  # the requests' own writes are the evidence
            self._verified_at = time.time()
            self.health.observe(True)
        except sqlite3.Error as exc:
            self.health.observe(False, f"{type(exc).__name__}: {exc}")
        finally:
            self._lock.release()

    def _current(self) -> sqlite3.Connection:
        """The connection, reopened first if the path names another file (lock held)."""
        change = "deleted" if self._db is None else self._file.change()
        if change is not None:
            self._reopen(change)
        return self._connection()

    def label(self, transaction_id: str) -> bool | None:
        """The first confirmed label of a transaction, if any."""
        with self._lock:
            row = (
                self._current()
                .execute("SELECT is_fraud FROM labels WHERE transaction_id = ?", (transaction_id,))
                .fetchone()
            )
        return None if row is None else bool(row[0])

    def unshipped(self, limit: int) -> tuple[list[ShippedLabel], int, int]:
        """Labels and conflicts not yet in the system of record, oldest first, and the
        rowid and conflict id to mark once they are there."""
        with self._lock:
            db = self._current()
            labels = db.execute(_UNSHIPPED_LABELS, (limit,)).fetchall()
            through = labels[-1][0] if labels else _scalar(db, _THROUGH, "labels")
            rows: list[ShippedLabel] = [(r[1], bool(r[2]), r[3], r[4]) for r in labels]
            conflicts_through = _scalar(db, _THROUGH, "label_conflicts")
            for row in db.execute(_UNSHIPPED_CONFLICTS, (limit,)):
                if row[5] > through:  # its first label is not shipped yet
                    break
                rows.append((row[1], bool(row[2]), row[3], row[4]))
                conflicts_through = row[0]
        return rows, through, conflicts_through

    def mark_shipped(self, labels_through: int, conflicts_through: int) -> None:
        """Labels up to ``labels_through`` (rowid) and conflicts up to
        ``conflicts_through`` (id) are in the system of record."""
        with self._lock:
            db = self._current()
            db.execute(_MARK, ("labels", labels_through))
            db.execute(_MARK, ("label_conflicts", conflicts_through))

    def backlog(self) -> int:
        """Labels and conflicts not yet shipped."""
        with self._lock:
            labels, conflicts = self._current().execute(_BACKLOG).fetchone()
        return int(labels) + int(conflicts)

    def counts(self) -> dict[str, int]:
        with self._lock:
            db = self._current()
            labels = db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
            conflicts = db.execute("SELECT COUNT(*) FROM label_conflicts").fetchone()[0]
        return {"labels": int(labels), "conflicts": int(conflicts)}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()


def _scalar(db: sqlite3.Connection, query: str, *args: object) -> int:
    return int(db.execute(query, args).fetchone()[0])
