"""The velocity pusher (app/services/velocity.py) against an in-memory store: no lost
update under concurrent recording and failing writes, read-your-writes, bounded memory."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Sequence

import pytest

from app.services.velocity import VelocityTracker, merged_states
from feature_repo.velocity import EMPTY, VelocityEvent, VelocityState

T0 = 1_750_000_000.0


class MemoryStore:
    """Stands in for VelocityStateStore: a dict, optionally slow or failing."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.rows: dict[str, tuple[VelocityState, float]] = {}
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.writes = 0
        self.lock = threading.Lock()

    def read(self, customers: Sequence[str]) -> tuple[list[VelocityState], list[float]]:
        with self.lock:
            found = [self.rows.get(c, (EMPTY, math.nan)) for c in customers]
        return [s for s, _ in found], [t for _, t in found]

    def write(
        self, customers: Sequence[str], states: Sequence[VelocityState], times: Sequence[float]
    ) -> None:
        time.sleep(self.delay_s)
        with self.lock:
            self.writes += 1
            if self.writes <= self.fail_first:
                raise OSError("online store unavailable")
            for c, s, t in zip(customers, states, times, strict=True):
                previous = self.rows.get(c, (EMPTY, math.nan))[1]
                assert math.isnan(previous) or t > previous  # Redis would skip it otherwise
                self.rows[c] = (s, t)

    def close(self) -> None:
        pass


def event(customer: int, i: int, thread: int) -> tuple[str, VelocityEvent]:
    tx = f"c{customer}-t{thread}-{i}"
    return f"C{customer}", VelocityEvent(T0 + i * 10 + thread, 1.0, "T1", 0.0, 0.0, tx)


def stored_ids(store: MemoryStore) -> set[str]:
    return {e.transaction_id for s, _ in store.rows.values() for e in s.events}


@pytest.mark.parametrize("fail_first", [0, 5])
def test_concurrent_records_of_one_customer_are_all_stored(fail_first: int) -> None:
    store = MemoryStore(fail_first=fail_first, delay_s=0.002)
    tracker = VelocityTracker(store, flush_interval_s=0.001, max_batch=3)  # type: ignore[arg-type]
    threads, per_thread, customers = 8, 25, 6
    recorded: list[set[str]] = [set() for _ in range(threads)]

    def work(thread: int) -> None:
        rng = random.Random(thread)
        for i in range(per_thread):
            batch = [event(c, i, thread) for c in range(customers)]
            rng.shuffle(batch)
            tracker.record(batch)
            recorded[thread].update(e.transaction_id for _, e in batch)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert tracker.flush(10.0)
    tracker.close()
    everything = set().union(*recorded)
    assert len(everything) == threads * per_thread * customers == 1_200
    assert stored_ids(store) == everything  # 200 per customer: within MAX_EVENTS
    assert tracker.stats.failures == fail_first
    assert tracker.stats.dropped == 0 and tracker.pending_events == 0
    assert store.writes > 1  # pushed in several batches while recording went on


def test_a_lookup_sees_every_transaction_recorded_before_it_began() -> None:
    store = MemoryStore(delay_s=0.001)
    tracker = VelocityTracker(store, flush_interval_s=0.0005, max_batch=2)  # type: ignore[arg-type]
    acked: set[str] = set()
    acked_lock = threading.Lock()
    done = threading.Event()
    misses: list[int] = []
    checks = 0

    def writer() -> None:
        for i in range(600):
            item = event(i % 3, i, 0)
            tracker.record([item])
            with acked_lock:
                acked.add(item[1].transaction_id)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    customers = ["C0", "C1", "C2"]
    while not done.is_set() or checks < 50:
        with acked_lock:
            before = set(acked)
        pending = tracker.pending_for(customers)  # the service's order: pending, then store
        stored, _ = store.read(customers)
        merged = merged_states(customers, stored, pending)
        seen = {e.transaction_id for s in merged.values() for e in s.events}
        misses.append(len(before - seen))
        checks += 1
    thread.join()
    tracker.close()
    assert checks >= 50
    assert sum(misses) == 0


def test_beyond_max_pending_new_transactions_are_dropped_and_counted() -> None:
    store = MemoryStore(fail_first=10**9)  # the store never comes back
    tracker = VelocityTracker(store, flush_interval_s=0.001, max_pending=50)  # type: ignore[arg-type]
    tracker.record([event(c, i, 0) for c in range(10) for i in range(8)])
    assert tracker.pending_events == 50
    assert tracker.stats.dropped == 30
    assert tracker.pending_for(["C0"])["C0"].events
    tracker.close(timeout_s=0.1)


def test_a_retried_transaction_is_recorded_once() -> None:
    store = MemoryStore()
    tracker = VelocityTracker(store, flush_interval_s=0.001)  # type: ignore[arg-type]
    item = event(1, 1, 0)
    tracker.record([item])
    assert tracker.flush()
    tracker.record([item])  # the client retried after a 503
    assert tracker.flush()
    tracker.close()
    assert len(store.rows["C1"][0].events) == 1


def test_a_future_dated_transaction_cannot_rewrite_the_stored_history() -> None:
    """Beyond the allowed skew a transaction is recorded at the tracker's clock (and
    counted); pruning follows the clock, so the card's real last day stays stored."""
    now = [T0]
    store = MemoryStore()
    tracker = VelocityTracker(
        store,  # type: ignore[arg-type]
        flush_interval_s=0.001,
        clock=lambda: now[0],
        max_future_skew_s=300.0,
    )
    history = [("C1", VelocityEvent(T0 - 600 * i, 1.0, "T1", 0.0, 0.0, f"h{i}")) for i in (5, 1)]
    tracker.record(history)
    assert tracker.flush()
    ahead = [("C1", VelocityEvent(T0 + 86_390 + i, 1.0, "T1", 0.0, 0.0, f"f{i}")) for i in range(3)]
    skewed = ("C1", VelocityEvent(T0 + 120, 1.0, "T1", 0.0, 0.0, "s0"))  # within the skew
    tracker.record([*ahead, skewed])
    assert tracker.flush()
    now[0] = T0 + 60
    late = ("C1", VelocityEvent(T0 + 30, 1.0, "T1", 0.0, 0.0, "n0"))
    tracker.record([late])
    assert tracker.flush()
    tracker.close()
    state, stamp = store.rows["C1"]
    times = {e.transaction_id: e.seconds - T0 for e in state.events}
    assert times == {"h5": -3_000, "h1": -600, "f0": 0, "f1": 0, "f2": 0, "s0": 120, "n0": 30}
    assert tracker.stats.clamped == 3
    assert stamp <= T0 + 300  # the stored row's event time is not a day ahead either
    merged = merged_states(["C1"], [state], {}, now=T0 + 60)["C1"]
    assert len(merged.events) == 7
