"""The API's own line to the system of record: review queue, rule lists, shadow results.

Requests that read or change shared state (an analyst claims a review item, adds a
blocked terminal, reads the shadow comparison) go straight to the database, not through
the spool: their answer is the database's. One connection, opened on first use and
reopened after a failure, used by one request at a time (``run`` holds a lock; the
routes call it on a worker thread). The shipper keeps its own connection, so a slow
analyst query never delays shipping. A database that cannot be reached raises
:class:`~system_of_record.store.RecordUnavailable` (the routes answer 503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from system_of_record.store import RecordStore, open_store

T = TypeVar("T")


class RecordDesk:
    """Serialised access to one connection to the system of record."""

    def __init__(self, url: str, password_file: Path | None, timeout_s: float) -> None:
        self.url = url
        self.password_file = password_file
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._store: RecordStore | None = None

    def run(self, work: Callable[[RecordStore], T]) -> T:
        """``work(store)`` under the lock (blocking: call it from a worker thread)."""
        with self._lock:
            if self._store is None:
                self._store = self.open()
            return work(self._store)

    def open(self) -> RecordStore:
        """A connection of its own (a dry-run's long read takes one, not the shared one)."""
        return open_store(self.url, self.password_file, self.timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
