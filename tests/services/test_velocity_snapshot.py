"""The velocity state's snapshot-and-merge (app/services/velocity.py): pending transactions
are taken before the store is read, merged per customer in lookup order, and a pending
transaction updates a stale stored state exactly as ``merged_states`` always has."""

from __future__ import annotations

import math

from app.services.velocity import PendingSnapshot, VelocityTracker, merged_states, pending_snapshot
from feature_repo.velocity import EMPTY, VelocityEvent, VelocityState, features_of
from tests.services.test_velocity_tracker import MemoryStore

T0 = 1_750_000_000.0


def tx(seconds: float, name: str, amount: float = 10.0) -> VelocityEvent:
    return VelocityEvent(T0 + seconds, amount, "T1", 0.0, 0.0, name)


def test_merged_states_follow_the_first_lookup_of_each_customer() -> None:
    stored_c2 = VelocityState((tx(-7200, "s2"),))
    stored_c1 = VelocityState((tx(-3000, "s1"),))
    snapshot = PendingSnapshot(
        ("C2", "C1", "C2", "C3"),
        {"C1": VelocityState((tx(-60, "p1"),)), "C3": VelocityState((tx(-30, "p3"),))},
    )
    stored = [stored_c2, stored_c1, EMPTY, EMPTY]  # one per lookup entry (C2's twice)
    merged = snapshot.merged(stored, now=T0)
    assert list(merged) == ["C2", "C1", "C3"]
    assert merged["C2"] is stored_c2  # nothing pending: the stored state as read
    assert [e.transaction_id for e in merged["C1"].events] == ["s1", "p1"]
    assert [e.transaction_id for e in merged["C3"].events] == ["p3"]
    assert merged == merged_states(snapshot.customers, stored, snapshot.pending, now=T0)


def test_a_pending_transaction_overrides_the_stale_stored_state() -> None:
    """The online store has not seen the last transaction yet: the features come from the
    merged state (as if the store were current), and one already pushed counts once."""
    stale = VelocityState((tx(-3000, "a"), tx(-400, "b")))
    pending = VelocityState((tx(-400, "b"), tx(-60, "c", amount=500.0)))
    merged = PendingSnapshot(("C1",), {"C1": pending}).merged([stale], now=T0)["C1"]
    assert [e.transaction_id for e in merged.events] == ["a", "b", "c"]
    current = stale.add((tx(-60, "c", amount=500.0),), T0)
    assert features_of(merged, T0, 0.0, 0.0) == features_of(current, T0, 0.0, 0.0)
    assert features_of(merged, T0, 0.0, 0.0) != features_of(stale, T0, 0.0, 0.0)


def test_without_a_store_read_the_pending_transactions_alone_count() -> None:
    snapshot = PendingSnapshot(("C1", "C2"), {"C1": VelocityState((tx(-60, "p"),))})
    merged = snapshot.merged(None, now=T0)
    assert merged == {"C1": VelocityState((tx(-60, "p"),)), "C2": EMPTY}


def test_without_a_tracker_nothing_is_pending() -> None:
    snapshot = pending_snapshot(None, ["C1", "C1"])
    assert snapshot == PendingSnapshot(("C1", "C1"), {})


def test_a_transaction_pushed_between_snapshot_and_read_is_seen_once() -> None:
    """Snapshot first, then the store: a push in between moves the transaction from one
    to the other, never out of both."""
    store = MemoryStore()
    tracker = VelocityTracker(store, flush_interval_s=0.001)  # type: ignore[arg-type]
    tracker.record([("C1", tx(-60, "t1"))])
    snapshot = pending_snapshot(tracker, ["C1"])
    assert tracker.flush()  # pushed: no longer pending
    stored, times = store.read(["C1"])
    tracker.close()
    assert not math.isnan(times[0])
    merged = snapshot.merged(stored)["C1"]
    assert [e.transaction_id for e in merged.events] == ["t1"]
