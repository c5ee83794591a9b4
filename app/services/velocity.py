"""Velocity state upkeep: scored transactions wait here until a background thread pushes them.

After a transaction is scored, :meth:`VelocityTracker.record` files it under its customer
as *pending* and returns at once: the request never waits for the online store. One
pusher thread wakes every ``flush_interval_s`` (or when enough is pending), takes the
pending transactions of up to ``max_batch`` customers, reads their stored states, merges
(``VelocityState.add``: idempotent per transaction id, order-independent), writes all
rows in one ``online_write_batch`` and only then removes what it wrote from pending.

Consistency, within one process (one writer per customer):

- **No lost update.** Every recorded transaction is in the stored state after the next
  successful push; the pusher is the only writer, so nothing it read can be overwritten
  by a concurrent writer, and a failed push keeps the transactions pending for the next.
- **Read your writes.** The lookup takes the pending snapshot (:func:`pending_snapshot`)
  *before* it reads the store, and merges the two with :meth:`PendingSnapshot.merged`, so
  a transaction recorded before a lookup started is in one or the other (it leaves
  pending only after it is stored). A transaction sees every earlier transaction
  of its customer whose scoring finished before its own lookup began; transactions
  scored together (a batch, or single requests coalesced into a group) see each other
  in timestamp order, as the offline computation does.
- **Retries count once.** A transaction id already in the state is ignored.
- **The clock, not the input, drives the state.** A transaction dated more than
  ``max_future_skew_s`` ahead of the tracker's clock is recorded at the clock's time
  (counted in ``stats.clamped``): it still counts for the card's next transactions, and
  it cannot make pruning drop the card's real last day. Pruning is referred to the clock
  whenever the newest transaction is later (``VelocityState.add(..., now)``).

Across processes, two writers for one customer could overwrite each other's push; the
deployment keeps one writer per customer (``docs/velocity.md``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from app.services.velocity_store import VelocityStateStore
from feature_repo.velocity import EMPTY, VelocityEvent, VelocityState, state_time

log = logging.getLogger(__name__)


@dataclass
class PushStats:
    """Counters the metrics endpoint reads."""

    pushes: int = 0
    pushed_customers: int = 0
    failures: int = 0
    dropped: int = 0
    clamped: int = 0  # recorded at the clock's time: dated beyond the allowed skew


class VelocityTracker:
    """Pending transactions per customer, and the thread that pushes them."""

    def __init__(
        self,
        store: VelocityStateStore | None,
        flush_interval_s: float = 0.02,
        max_pending: int = 100_000,
        max_batch: int = 500,
        on_push: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        max_future_skew_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.max_future_skew_s = max_future_skew_s
        self._clock = clock
        self._clamp_logged_at = -math.inf
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.max_batch = max_batch
        self._on_push = on_push
        self._on_failure = on_failure
        self._pending: dict[str, VelocityState] = {}
        self._pending_events = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self.stats = PushStats()
        self._thread: threading.Thread | None = None
        if store is not None:
            self._thread = threading.Thread(target=self._run, name="velocity-push", daemon=True)
            self._thread.start()

    @property
    def pending_events(self) -> int:
        return self._pending_events

    def pending_for(self, customers: Iterable[str]) -> dict[str, VelocityState]:
        """Recorded but not yet stored transactions of these customers."""
        with self._lock:
            return {c: self._pending[c] for c in customers if c in self._pending}

    def record(self, events: Sequence[tuple[str, VelocityEvent]]) -> None:
        """File scored transactions (customer id, event) for the next push; never blocks
        on the store. Beyond ``max_pending`` waiting transactions, new ones are dropped
        and counted (the store has been failing for a while). A transaction dated more
        than ``max_future_skew_s`` ahead of the clock is recorded at the clock's time."""
        if self._store is None or not events:
            return
        now = self._clock()
        clamped = 0
        with self._lock:
            for customer, event in events:
                if self._pending_events >= self.max_pending:
                    self.stats.dropped += 1
                    continue
                if event.seconds > now + self.max_future_skew_s:
                    event = event._replace(seconds=now)
                    clamped += 1
                before = self._pending.get(customer, EMPTY)
                after = before.add((event,), now)
                self._pending[customer] = after
                self._pending_events += len(after.events) - len(before.events)
            due = len(self._pending) >= self.max_batch
            self.stats.clamped += clamped
        if clamped:
            self._log_clamped(clamped, now)
        if due:
            self._wake.set()

    def _log_clamped(self, clamped: int, now: float) -> None:
        """One warning a minute at most: a flood of future-dated input must not flood logs."""
        if now - self._clamp_logged_at < 60.0:
            return
        self._clamp_logged_at = now
        log.warning(
            "transactions dated ahead of the server clock: velocity state records them now",
            extra={"fields": {"clamped": clamped, "clamped_total": self.stats.clamped}},
        )

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything recorded so far is stored (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._pending_events and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.005)
        return self._pending_events == 0

    def _run(self) -> None:
        failures = 0
        while True:
            self._wake.wait(self.flush_interval_s * (2**failures if failures else 1))
            self._wake.clear()
            if not self._pending and self._stopping:
                return
            try:
                self._push_once()
                failures = 0
            except Exception as exc:  # keep pending; try again after a back-off
                failures = min(failures + 1, 6)
                self.stats.failures += 1
                if self._on_failure is not None:
                    self._on_failure()
                log.warning("velocity push failed", extra={"fields": {"error": repr(exc)}})
                if self._stopping:
                    return

    def _push_once(self) -> None:
        assert self._store is not None
        with self._lock:
            customers = list(self._pending)[: self.max_batch]
            batch = {c: self._pending[c] for c in customers}
        if not batch:
            return
        began = time.perf_counter()
        stored, stored_times = self._store.read(customers)
        clock = self._clock()
        merged = [s.merge(batch[c], clock) for c, s in zip(customers, stored, strict=True)]
        times = [state_time(s, t) for s, t in zip(merged, stored_times, strict=True)]
        self._store.write(customers, merged, times)
        seconds = time.perf_counter() - began
        with self._lock:
            for customer in customers:
                written = {e.transaction_id for e in batch[customer].events}
                now = self._pending.get(customer, EMPTY)
                left = tuple(e for e in now.events if e.transaction_id not in written)
                self._pending_events -= len(now.events) - len(left)
                if left:
                    self._pending[customer] = VelocityState(left)
                else:
                    self._pending.pop(customer, None)
            more = bool(self._pending)
        self.stats.pushes += 1
        self.stats.pushed_customers += len(customers)
        if self._on_push is not None:
            self._on_push(len(customers), seconds)
        if more and len(self._pending) >= self.max_batch:
            self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        """Push what is pending (up to ``timeout_s``), then stop the thread."""
        if self._thread is None:
            return
        self.flush(timeout_s)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._pending_events:
            log.warning(
                "velocity updates not pushed at shutdown",
                extra={"fields": {"pending": self._pending_events}},
            )
        if self._store is not None:
            self._store.close()


def merged_states(
    customers: Sequence[str],
    stored: Sequence[VelocityState] | None,
    pending: dict[str, VelocityState],
    now: float | None = None,
) -> dict[str, VelocityState]:
    """Stored state (if read) merged with pending transactions, per customer, pruned from
    ``now`` (default: the wall clock)."""
    now = time.time() if now is None else now
    out: dict[str, VelocityState] = {}
    for i, customer in enumerate(customers):
        if customer in out:
            continue
        base = stored[i] if stored is not None else EMPTY
        extra = pending.get(customer)
        out[customer] = base.merge(extra, now) if extra is not None else base
    return out


@dataclass(frozen=True)
class PendingSnapshot:
    """The pending transactions of some customers (one entry per transaction looked up),
    taken before their stored states are read."""

    customers: tuple[str, ...]
    pending: dict[str, VelocityState]

    def merged(
        self, stored: Sequence[VelocityState] | None, now: float | None = None
    ) -> dict[str, VelocityState]:
        """Each customer's state, in the order first looked up: its stored state (one per
        entry of ``customers``; None when the store could not be read) merged with its
        pending transactions."""
        return merged_states(self.customers, stored, self.pending, now)


def pending_snapshot(tracker: VelocityTracker | None, customers: Sequence[str]) -> PendingSnapshot:
    """Take the snapshot of ``customers`` first, then read the store, then merge ("Read
    your writes" in the module docstring). Nothing is pending without a tracker (the batch
    command, or ``VELOCITY_PUSH`` off)."""
    ids = tuple(customers)
    return PendingSnapshot(ids, tracker.pending_for(ids) if tracker is not None else {})
