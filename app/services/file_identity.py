"""Is the file a service opened still the one its path names? (docs/reliability.md,
"Files that disappear").

An open SQLite connection keeps working on a file that was deleted (``rm``) or replaced
(``mv new old``): its writes go to an inode no path reaches, lost when the process ends,
and its reads see the old data forever. :class:`OpenedFile` remembers the
``(st_dev, st_ino)`` of the file (and of its ``-wal``) when it was opened and compares
them with what the path names now: one ``os.stat`` each, about 1.4 us here. Reopens are
counted per process in :func:`note_reopen` (``fraud_file_reopened_total{file}``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

FileId = tuple[int, int]  # (st_dev, st_ino)
Change = Literal["deleted", "replaced"]
WATCHED_FILES = ("audit_log", "label_log", "online_store")

# Written first into a file opened in place of a vanished one: which file vanished, how,
# when the path last named it, and how many rows of the write that noticed were re-written.
GAP_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_gaps (
    id INTEGER PRIMARY KEY,
    reopened_at REAL NOT NULL,
    reason TEXT NOT NULL,
    previous_file TEXT NOT NULL,
    last_verified_at REAL NOT NULL,
    rewritten INTEGER NOT NULL
);
"""
GAP_INSERT = (
    "INSERT INTO file_gaps (reopened_at, reason, previous_file, last_verified_at, rewritten) "
    "VALUES (?,?,?,?,?)"
)

_reopened: Counter[str] = Counter()
_lock = threading.Lock()


def file_id(path: Path) -> FileId | None:
    """The identity of the file at ``path`` now; None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def describe(ident: FileId | None) -> str:
    return "none" if ident is None else f"{ident[0]}:{ident[1]}"


class OpenedFile:
    """The identity of a database (and its write-ahead log, if any) when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = Path(f"{path}-wal")
        self.ident = file_id(path)
        self.wal_ident = file_id(self.wal)

    def change(self) -> Change | None:
        """``deleted`` or ``replaced`` when the path (or the ``-wal`` beside it) no
        longer names the opened file; None while it does."""
        now = file_id(self.path)
        if now is None:
            return "deleted"
        if now != self.ident:
            return "replaced"
        if self.wal_ident is not None:
            wal = file_id(self.wal)
            if wal != self.wal_ident:
                return "deleted" if wal is None else "replaced"
        return None


def stale_wal(vanished: OpenedFile | None, path: Path) -> bool:
    """Whether the ``-wal`` beside ``path`` is still the one of a file that vanished from
    there: SQLite would replay that log's pages onto the new file (silently wrong data),
    so such a file must not be read until the old ``-wal`` is gone."""
    if vanished is None or vanished.wal_ident is None:
        return False
    return file_id(Path(f"{path}-wal")) == vanished.wal_ident


def close_vanished(db: sqlite3.Connection | None) -> None:
    """Close the connection to a file that vanished from its path, ignoring its errors.

    Closing before a new file is opened at the path checkpoints into the old inode and
    removes the path's ``-wal``, which a new database there would otherwise take for its own.
    """
    if db is not None:
        with contextlib.suppress(sqlite3.Error):
            db.close()


def note_reopen(file: str, change: Change, opened: OpenedFile, detail: str) -> None:
    """Count and log one reopen of ``file`` (one of :data:`WATCHED_FILES`)."""
    with _lock:
        _reopened[file] += 1
    log.error(
        "file reopened",
        extra={
            "fields": {
                "file": file,
                "change": change,
                "previous_file": describe(opened.ident),
                "detail": detail,
            }
        },
    )


def reopened_total(file: str) -> int:
    """Reopens of ``file`` in this process so far."""
    with _lock:
        return _reopened[file]
