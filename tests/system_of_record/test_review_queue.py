"""The review queue on both engines: claims, leases, releases, outcomes, the numbers, and
a claim race between two analysts on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from system_of_record.review_queue import (
    claim,
    queue_items,
    queue_stats,
    release,
    resolve,
    review_item,
)
from system_of_record.store import RecordStore, open_store
from tests.system_of_record.helpers import T0, decision, make_store

pytestmark = pytest.mark.integration
LEASE = 600.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    queued = make_store(request, tmp_path)
    rows = [decision(i, T0 + timedelta(minutes=i), decided="review") for i in range(4)]
    queued.write_decisions(rows, [(f"tx-{i}", "model_review") for i in range(3)])
    yield queued
    queued.close()


def test_claim_release_and_resolve_follow_the_state_machine(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    assert claim(store, "tx-0", "ann", LEASE, now) == "claimed"
    assert claim(store, "tx-0", "bob", LEASE, now + timedelta(seconds=10)) == "taken"
    assert release(store, "tx-0", "bob") == "not_yours"
    assert resolve(store, "tx-0", "bob", "fraud", "", now) == "not_yours"
    assert resolve(store, "tx-1", "ann", "fraud", "", now) == "not_yours"  # open: claim first
    assert release(store, "tx-0", "ann") == "released"
    assert review_item(store, "tx-0").status == "open"  # type: ignore[union-attr]
    assert claim(store, "tx-0", "bob", LEASE, now) == "claimed"
    assert resolve(store, "tx-0", "bob", "fraud", "card stolen", now + timedelta(minutes=2)) == (
        "resolved"
    )
    item = review_item(store, "tx-0")
    assert item is not None
    assert (item.status, item.outcome, item.decided_by, item.note) == (
        "resolved", "fraud", "bob", "card stolen",
    )  # fmt: skip
    assert item.decided_at == now + timedelta(minutes=2)
    assert item.decision == "review" and item.rules == "velocity_cap" and item.amount == 10.0
    assert resolve(store, "tx-0", "bob", "legitimate", "", now) == "already"
    assert claim(store, "tx-0", "ann", LEASE, now) == "resolved"
    assert release(store, "tx-0", "bob") == "not_yours"
    for outcome in ("missing",):
        assert claim(store, "tx-9", "ann", LEASE, now) == outcome
        assert release(store, "tx-9", "ann") == outcome
        assert resolve(store, "tx-9", "ann", "fraud", "", now) == outcome
    assert review_item(store, "tx-9") is None
    assert review_item(store, "tx-3") is None  # decided, never queued
    with pytest.raises(ValueError, match="outcome"):
        resolve(store, "tx-1", "ann", "maybe", "", now)


def test_an_expired_claim_can_be_taken_over_and_a_renewal_extends_it(
    store: RecordStore,
) -> None:
    now = T0 + timedelta(hours=1)
    assert claim(store, "tx-1", "ann", LEASE, now) == "claimed"
    assert claim(store, "tx-1", "ann", LEASE, now + timedelta(seconds=500)) == "claimed"  # renew
    # 700 s after the first claim, 200 s after the renewal: still ann's.
    assert claim(store, "tx-1", "bob", LEASE, now + timedelta(seconds=700)) == "taken"
    assert claim(store, "tx-1", "bob", LEASE, now + timedelta(seconds=1101)) == "claimed"
    assert review_item(store, "tx-1").claimed_by == "bob"  # type: ignore[union-attr]
    assert resolve(store, "tx-1", "ann", "fraud", "", now + timedelta(seconds=1102)) == (
        "not_yours"
    )
    # An expired claim nobody took over can still be resolved by its claimer.
    assert claim(store, "tx-2", "ann", LEASE, now) == "claimed"
    later = now + timedelta(hours=5)
    assert resolve(store, "tx-2", "ann", "legitimate", "known customer", later) == "resolved"


def test_queue_listing_and_stats(store: RecordStore) -> None:
    now = T0 + timedelta(hours=1)
    assert queue_stats(store, now) == {
        "open": 3,
        "claimed": 0,
        "resolved": 0,
        "oldest_open_seconds": pytest.approx(3599.995),
    }  # fmt: skip  (enqueued at tx-0's scored_at, T0 + 5 ms)
    claim(store, "tx-0", "ann", LEASE, now)
    claim(store, "tx-2", "ann", LEASE, now)
    resolve(store, "tx-2", "ann", "unsure", "", now)
    assert queue_stats(store, now) == {
        "open": 1, "claimed": 1, "resolved": 1, "oldest_open_seconds": pytest.approx(3539.995),
    }  # fmt: skip
    assert [item.transaction_id for item in queue_items(store, None, 10)] == [
        "tx-0", "tx-1", "tx-2",
    ]  # fmt: skip
    assert [item.transaction_id for item in queue_items(store, None, 2, offset=1)] == [
        "tx-1", "tx-2",
    ]  # fmt: skip
    assert [item.transaction_id for item in queue_items(store, "open", 10)] == ["tx-1"]
    assert [item.claimed_by for item in queue_items(store, "claimed", 10)] == ["ann"]
    assert queue_items(store, "resolved", 10)[0].to_dict()["decided_at"] == now.isoformat()
    claim(store, "tx-1", "bob", LEASE, now)
    assert queue_stats(store, now)["oldest_open_seconds"] is None


def test_two_analysts_claiming_at_once_exactly_one_wins(
    postgres_url: tuple[str, Path],
) -> None:
    url, password = postgres_url
    rounds = 25
    setup = open_store(url, password)
    setup.write_decisions(
        [decision(i) for i in range(rounds)], [(f"tx-{i}", "model_review") for i in range(rounds)]
    )
    setup.close()
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, list[str]] = {"ann": [], "bob": []}
    errors: list[BaseException] = []

    def analyst(name: str) -> None:
        store = open_store(url, password)
        try:
            store.counts()  # connected before the race
            for i in range(rounds):
                barrier.wait()
                results[name].append(claim(store, f"tx-{i}", name, LEASE, T0))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=analyst, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    outcomes = [sorted(pair) for pair in zip(results["ann"], results["bob"], strict=True)]
    assert outcomes == [["claimed", "taken"]] * rounds
    check = open_store(url, password)
    winners = [item.claimed_by for item in queue_items(check, "claimed", 100)]
    check.close()
    assert len(winners) == rounds
    assert winners.count("ann") == results["ann"].count("claimed")
