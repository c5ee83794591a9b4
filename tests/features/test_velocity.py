"""The shared velocity state and features (feature_repo/velocity.py): set semantics, pruning,
windows, and the offline table the training set joins."""

from __future__ import annotations

import math
import random

import pytest

from feature_repo.velocity import (
    EMPTY,
    MAX_EVENTS,
    NO_PREVIOUS_SECONDS,
    RETAIN_SECONDS,
    STATE_FIELDS,
    VELOCITY_FEATURES,
    VelocityEvent,
    VelocityState,
    compute_velocity_features,
    customer_log,
    features_of,
    state_time,
    states_from_columns,
)

T0 = 1_750_000_000.0


def event(
    seconds: float,
    tx: str,
    amount: float = 10.0,
    terminal: str = "T1",
    x: float = 0.0,
    y: float = 0.0,
) -> VelocityEvent:
    return VelocityEvent(T0 + seconds, amount, terminal, x, y, tx)


def named(values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(VELOCITY_FEATURES, values, strict=True))


def test_windows_count_only_strictly_earlier_transactions() -> None:
    state = EMPTY.add(
        [
            event(-90_000, "a", 1.0),  # older than 24 h
            event(-7_000, "b", 2.0),  # within 24 h
            event(-1_000, "c", 4.0, terminal="T2"),  # within 1 h
            event(-300, "d", 8.0, terminal="T3", x=3.0, y=4.0),  # within 10 min
            event(0, "e", 100.0),  # the same instant as the scored one: not counted
        ]
    )
    f = named(features_of(state, T0, 0.0, 0.0))
    assert (f["vel_tx_count_10m"], f["vel_tx_count_1h"], f["vel_tx_count_24h"]) == (1, 2, 3)
    assert (f["vel_amount_10m"], f["vel_amount_1h"], f["vel_amount_24h"]) == (8.0, 12.0, 14.0)
    assert f["vel_seconds_since_prev"] == 300
    assert f["vel_distinct_terminals_1h"] == 2
    assert f["vel_km_from_prev_terminal"] == pytest.approx(5.0)
    assert f["vel_speed_from_prev_kmh"] == pytest.approx(5.0 / 300 * 3600)


def test_a_first_transaction_has_no_previous() -> None:
    f = named(features_of(EMPTY, T0, 1.0, 1.0))
    assert f["vel_seconds_since_prev"] == NO_PREVIOUS_SECONDS
    assert f["vel_tx_count_24h"] == f["vel_km_from_prev_terminal"] == 0.0


def test_a_previous_transaction_older_than_the_ttl_does_not_count() -> None:
    state = EMPTY.add([event(-NO_PREVIOUS_SECONDS, "old", x=50.0)])
    assert named(features_of(state, T0, 0.0, 0.0)) == named(features_of(EMPTY, T0, 0.0, 0.0))
    near = EMPTY.add([event(-NO_PREVIOUS_SECONDS + 1, "old", x=50.0)])
    assert named(features_of(near, T0, 0.0, 0.0))["vel_km_from_prev_terminal"] == 50.0


def test_unknown_locations_count_as_no_move_and_speed_uses_at_least_a_minute() -> None:
    state = EMPTY.add([event(-5, "a", x=math.nan, y=math.nan)])
    f = named(features_of(state, T0, 10.0, 0.0))
    assert f["vel_km_from_prev_terminal"] == 0.0
    moved = EMPTY.add([event(-5, "a", x=0.0)])
    assert named(features_of(moved, T0, 10.0, 0.0))["vel_speed_from_prev_kmh"] == 600.0


def test_adding_is_idempotent_per_transaction_id_and_order_free() -> None:
    rng = random.Random(3)
    events = [event(rng.randrange(-200_000, 0), f"t{i}", rng.random()) for i in range(60)]
    reference = EMPTY.add(events)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        state = EMPTY
        for e in shuffled:
            state = state.add([e]).add([e])  # a retried request adds nothing
        assert state == reference


def test_pruning_never_drops_what_the_merged_state_keeps() -> None:
    """prune(prune(A) + B) == prune(A + B): merging a stored state with pending
    transactions gives the state of having seen all of them."""
    rng = random.Random(11)
    for trial in range(200):
        a = [event(rng.randrange(-300_000, 0), f"a{trial}-{i}") for i in range(rng.randrange(30))]
        b = [event(rng.randrange(-300_000, 0), f"b{trial}-{i}") for i in range(rng.randrange(30))]
        assert EMPTY.add(a).merge(EMPTY.add(b)) == EMPTY.add(a + b)


def test_pruning_keeps_a_day_and_the_instant_before_the_newest() -> None:
    state = EMPTY.add(
        [event(-5 * RETAIN_SECONDS, "old1"), event(-3 * RETAIN_SECONDS, "old2"), event(0, "new")]
    )
    assert [e.transaction_id for e in state.events] == ["old2", "new"]
    f = named(features_of(state, T0, 0.0, 0.0))
    assert f["vel_seconds_since_prev"] == 3 * RETAIN_SECONDS  # still known at the same instant
    many = EMPTY.add([event(-i, f"x{i}") for i in range(MAX_EVENTS + 50)])
    assert len(many.events) == MAX_EVENTS
    assert many.events[-1].transaction_id == "x0"


def test_the_stored_lists_round_trip() -> None:
    state = EMPTY.add([event(-10, "a", 1.5, "T9", 1.0, math.nan), event(-5, "b")])
    row = state.to_row()
    assert set(row) == set(STATE_FIELDS)
    back = VelocityState.from_row(row)
    assert [e.transaction_id for e in back.events] == ["a", "b"]
    assert math.isnan(back.events[0].y_km)
    assert VelocityState.from_row({}) == EMPTY
    columns = {name: [row[name], None] for name in STATE_FIELDS}
    assert states_from_columns(columns, 2)[1] == EMPTY


def test_state_time_always_advances_for_feasts_redis_store() -> None:
    state = EMPTY.add([event(-10, "a")])
    assert state_time(state, math.nan) == T0 - 10
    assert state_time(state, T0) == pytest.approx(T0 + 1e-6)  # a late transaction


def test_customer_log_holds_the_state_after_each_transaction() -> None:
    nan = math.nan
    events = [
        VelocityEvent(T0, 1.0, "T2", 3.0, 4.0, "t1"),
        VelocityEvent(T0 + 60, 2.0, "T1", 0.0, 0.0, "t2"),
        VelocityEvent(T0 + 60, 3.0, "T3", nan, nan, "t3"),  # T3 has no known location
    ]
    log = customer_log(events)
    assert [[e.transaction_id for e in state.events] for _, state in log] == [
        ["t1"],
        ["t1", "t2"],
        ["t1", "t2", "t3"],
    ]
    stamps = [stamp for stamp, _ in log]
    # Two transactions at one instant: the second row's time is a microsecond later.
    assert stamps[:2] == [T0, T0 + 60]
    assert stamps[2] == pytest.approx(T0 + 60 + 1e-6, abs=1e-7)
    assert math.isnan(log[2][1].to_row()["vel_event_x_km"][2])
    features = compute_velocity_features([log[2][1]], [T0 + 7200], [0.0], [0.0])
    assert features["vel_tx_count_24h"][0] == 3.0
    assert customer_log([]) == []


def test_a_future_newest_does_not_prune_the_history_before_now() -> None:
    """Pruning follows the server's clock: a transaction dated almost a day ahead must not
    push the card's real last day out of its state."""
    history = [event(-i * 600, f"h{i}") for i in range(1, 6)]  # the last 50 minutes
    ahead = [event(RETAIN_SECONDS - 30 + i, f"f{i}") for i in range(3)]
    state = EMPTY.add(history, now=T0).add(ahead, now=T0)
    assert [e.transaction_id for e in state.events] == [f"h{i}" for i in range(5, 0, -1)] + [
        "f0",
        "f1",
        "f2",
    ]
    f = named(features_of(state, T0 + 1, 0.0, 0.0))
    assert (f["vel_tx_count_1h"], f["vel_tx_count_24h"]) == (5, 5)
    # Without a clock (the offline log, where each transaction is "now"), the newest rules.
    assert [e.transaction_id for e in EMPTY.add(history + ahead).events] == ["f0", "f1", "f2"]


def test_pruning_with_a_clock_never_drops_what_the_merged_state_keeps() -> None:
    """The merge property holds with the clock too, however far it moved between them."""
    rng = random.Random(12)
    for trial in range(200):
        a = [event(rng.randrange(-300_000, 100_000), f"a{trial}-{i}") for i in range(20)]
        b = [event(rng.randrange(-300_000, 100_000), f"b{trial}-{i}") for i in range(20)]
        earlier = T0 + rng.randrange(-200_000, 0)
        stored = EMPTY.add(a, now=earlier)  # pruned when the clock was earlier
        assert stored.merge(EMPTY.add(b, now=T0), now=T0) == EMPTY.add(a + b, now=T0)
