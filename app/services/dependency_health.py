"""Are the audit log and the label log writable? Readiness for the files answers need.

Every write outcome feeds a :class:`WriteHealth` at once: the request path's own writes
(an audit append failing is a scoring answer failing) and, when no write happened for a
while, the probe write of the periodic check (:class:`FileWatch`). The state follows the
outcomes with hysteresis, as the online store's (``feature_health.py``) does: it turns
``failing`` after ``consecutive`` failures in a row and back to ``writable`` after
``consecutive`` successes in a row, so one slow fsync or one lucky write does not make a
pod flap. ``/readyz`` only reads the state (docs/reliability.md, "Readiness from every
dependency").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# The probe write: one row rewritten, committed (and fsynced) like a real write.
PROBE_SCHEMA = """
CREATE TABLE IF NOT EXISTS write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at REAL NOT NULL
);
"""
PROBE_WRITE = "INSERT OR REPLACE INTO write_probe (id, written_at) VALUES (1, ?)"
CHECK_TIMEOUT_S = 5.0  # a check (reopen or probe) not done by then counts as a failure


class WriteHealth:
    """Writable or failing, from write outcomes with hysteresis (thread-safe)."""

    def __init__(self, name: str, consecutive: int = 3) -> None:
        self.name = name
        self.consecutive = consecutive
        self.writable = True  # the file was opened and its schema written at start-up
        self.detail: str | None = None  # the failure that turned it failing
        self.last_outcome = time.monotonic()
        self._streak = 0  # outcomes in a row that disagree with ``writable``
        self._lock = threading.Lock()

    def observe(self, ok: bool, detail: str | None = None) -> None:
        """Fold one write outcome in (``detail`` says why a failed write failed)."""
        with self._lock:
            self.last_outcome = time.monotonic()
            if ok == self.writable:
                self._streak = 0
                return
            self._streak += 1
            if self._streak < self.consecutive:
                return
            self._streak = 0
            self.writable = ok
            self.detail = None if ok else detail
        log.log(
            logging.INFO if ok else logging.ERROR,
            "log writable" if ok else "log failing",
            extra={"fields": {"file": self.name, "detail": detail}},
        )

    def idle_for(self) -> float:
        """Seconds since the last outcome."""
        return time.monotonic() - self.last_outcome


class FileWatch:
    """Runs each check every ``interval_s`` (0: never), each on its own daemon thread, so
    a log whose disk hangs does not stop the other's checks."""

    def __init__(self, checks: Sequence[Callable[[], None]], interval_s: float) -> None:
        self._checks = tuple(checks)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.interval_s <= 0 or self._threads:
            return
        for check in self._checks:
            thread = threading.Thread(target=self._loop, args=(check,), daemon=True)
            thread.name = "file-watch"
            thread.start()
            self._threads.append(thread)

    def _loop(self, check: Callable[[], None]) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                check()
            except Exception:  # never let the watcher die silently
                log.exception("file check failed")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CHECK_TIMEOUT_S + 1)
