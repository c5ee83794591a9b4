"""Velocity features: the one implementation shared by training, Feast and serving.

A customer's *velocity state* is the set of its recent transactions, kept as parallel
lists (time, amount, terminal, terminal coordinates, transaction id) sorted by time. The
state is what the ``customer_velocity`` feature view stores, online (pushed by the
service after every scored transaction through the ``customer_velocity_push``
PushSource) and offline (one row per transaction, the state just after it, written by
the ``features`` stage's Spark job, which runs each customer's transactions through
:func:`customer_log`, the same :meth:`VelocityState.add` the service uses).

The model features (``VELOCITY_FEATURES``) are computed from a state and the time of the
transaction being scored by :func:`compute_velocity_features`, the function the
on-demand view ``velocity_features`` runs for training and the service runs online.
Only transactions *strictly earlier* than the scored one count, so a state that already
holds the scored transaction (or one at the same instant) gives the same features as the
state before it: this is what makes the offline point-in-time join, the online read and
a retried request agree.

The state is a function of the *set* of transactions it has seen: adding is idempotent
per transaction id and independent of order, and pruning keeps (a) every transaction
within ``RETAIN_SECONDS`` of the *reference time* and (b) every transaction at the latest
instant before it (so "previous transaction" is known even after a long pause), capped
at the ``MAX_EVENTS`` newest. The reference time is the newest transaction, but never
later than ``now`` when a clock is given: the service passes its clock, so a transaction
dated ahead of the server cannot push the card's real last day out of its state; the
offline log passes none (each transaction is "now" when it is added). Because pruning
only ever drops what a larger set (or a later clock) would drop too, merging a stored
state with pending transactions gives the same state as seeing them all in order: no
update is lost by merging.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# Names in feature_repo/definitions.py.
STATE_VIEW = "customer_velocity"
LOCATION_VIEW = "terminal_location"
FEATURES_VIEW = "velocity_features"  # the on-demand view computing VELOCITY_FEATURES
PUSH_SOURCE = "customer_velocity_push"

WINDOWS: tuple[tuple[str, int], ...] = (("10m", 600), ("1h", 3_600), ("24h", 86_400))
RETAIN_SECONDS = 86_400  # the longest window
MAX_EVENTS = 200  # per customer; counts saturate here (a card-testing burst is 5-16)
NO_PREVIOUS_SECONDS = 30 * 86_400.0  # "seconds since previous" of a first transaction
MIN_SPEED_SECONDS = 60.0  # speed uses at least a minute, so two swipes are not 1,000 km/h

# The stored state: one list per field, one entry per transaction, sorted by time.
STATE_FIELDS: tuple[str, ...] = (
    "vel_event_seconds",
    "vel_event_amounts",
    "vel_event_terminals",
    "vel_event_x_km",
    "vel_event_y_km",
    "vel_event_ids",
)

VELOCITY_FEATURES: tuple[str, ...] = (
    *(f"vel_tx_count_{name}" for name, _ in WINDOWS),
    *(f"vel_amount_{name}" for name, _ in WINDOWS),
    "vel_seconds_since_prev",
    "vel_distinct_terminals_1h",
    "vel_km_from_prev_terminal",
    "vel_speed_from_prev_kmh",
)


class VelocityEvent(NamedTuple):
    """One scored transaction as the velocity state records it."""

    seconds: float  # epoch seconds, UTC
    amount: float
    terminal_id: str
    x_km: float  # terminal coordinates; NaN when the terminal's location is unknown
    y_km: float
    transaction_id: str


@dataclass(frozen=True)
class VelocityState:
    """A customer's recent transactions, sorted by (time, transaction id)."""

    events: tuple[VelocityEvent, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VelocityState:
        """The state from its stored lists (missing or empty lists: no history)."""
        seconds = row.get("vel_event_seconds")
        if seconds is None or len(seconds) == 0:
            return EMPTY
        columns = [row[name] for name in STATE_FIELDS]
        events = (
            VelocityEvent(float(s), float(a), str(t), float(x), float(y), str(i))
            for s, a, t, x, y, i in zip(*columns, strict=True)
        )
        return cls(tuple(sorted(events, key=_order)))

    def to_row(self) -> dict[str, list[Any]]:
        """The stored lists (the ``customer_velocity`` view's fields)."""
        return {name: [event[k] for event in self.events] for k, name in enumerate(STATE_FIELDS)}

    @property
    def newest_seconds(self) -> float:
        return self.events[-1].seconds if self.events else math.nan

    def add(self, new: Iterable[VelocityEvent], now: float | None = None) -> VelocityState:
        """The state after ``new`` transactions: idempotent per id, independent of order;
        pruned from ``now`` (epoch seconds) when it is earlier than the newest."""
        known = {event.transaction_id for event in self.events}
        fresh = [event for event in new if event.transaction_id not in known]
        if not fresh:
            return self
        merged = {event.transaction_id: event for event in (*self.events, *fresh)}
        return VelocityState(_prune(sorted(merged.values(), key=_order), now))

    def merge(self, other: VelocityState, now: float | None = None) -> VelocityState:
        """Union of two states (the stored one and transactions not yet pushed)."""
        return self.add(other.events, now)


EMPTY = VelocityState()


def _order(event: VelocityEvent) -> tuple[float, str]:
    return event.seconds, event.transaction_id


def _prune(events: Sequence[VelocityEvent], now: float | None) -> tuple[VelocityEvent, ...]:
    """Keep the last ``RETAIN_SECONDS`` before the reference time (the newest, at most
    ``now``), the instant before it, and anything later; capped."""
    if not events:
        return ()
    reference = events[-1].seconds if now is None else min(events[-1].seconds, now)
    seconds = [event.seconds for event in events]
    start = bisect_right(seconds, reference - RETAIN_SECONDS)
    before = bisect_left(seconds, reference)  # events strictly before the reference
    if before > 0:
        previous_instant = seconds[before - 1]
        start = min(start, bisect_left(seconds, previous_instant))
    start = max(start, len(events) - MAX_EVENTS)
    return tuple(events[start:])


def state_time(state: VelocityState, previous: float) -> float:
    """Event time (epoch seconds) of a pushed state: its newest transaction, but always
    after the time already stored (``previous``, NaN if none). Feast's Redis store skips
    a write whose event time is not newer than the stored one, so a late transaction
    (older than the newest) must still advance the row's time to be written."""
    newest = state.newest_seconds
    if math.isnan(previous):
        return newest
    return max(newest, previous + 1e-6)


def features_of(
    state: VelocityState, seconds: float, x_km: float, y_km: float
) -> tuple[float, ...]:
    """``VELOCITY_FEATURES`` of a transaction at ``seconds`` at a terminal at (x, y)."""
    times = [event.seconds for event in state.events]
    end = bisect_left(times, seconds)  # strictly earlier transactions only
    values: list[float] = []
    amounts: list[float] = []
    starts: dict[str, int] = {}
    for name, width in WINDOWS:
        starts[name] = bisect_right(times, seconds - width, 0, end)
        values.append(float(end - starts[name]))
    for name, _ in WINDOWS:
        amounts.append(sum(event.amount for event in state.events[starts[name] : end]))
    values += amounts
    gap = seconds - state.events[end - 1].seconds if end else NO_PREVIOUS_SECONDS
    if gap >= NO_PREVIOUS_SECONDS:  # as old as the view's TTL: offline, Feast drops it
        return (*values, NO_PREVIOUS_SECONDS, 0.0, 0.0, 0.0)
    previous = state.events[end - 1]
    terminals = {event.terminal_id for event in state.events[starts["1h"] : end]}
    km = math.hypot(x_km - previous.x_km, y_km - previous.y_km)
    if math.isnan(km):  # either location unknown: no evidence of a move
        km = 0.0
    speed = km / max(gap, MIN_SPEED_SECONDS) * 3_600.0
    return (*values, gap, float(len(terminals)), km, speed)


def compute_velocity_features(
    states: Sequence[VelocityState],
    seconds: Sequence[float] | np.ndarray,
    x_km: Sequence[float] | np.ndarray,
    y_km: Sequence[float] | np.ndarray,
) -> dict[str, np.ndarray]:
    """Every feature in ``VELOCITY_FEATURES`` for n transactions (one state each)."""
    rows = [
        features_of(state, float(s), float(x), float(y))
        for state, s, x, y in zip(states, seconds, x_km, y_km, strict=True)
    ]
    matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(VELOCITY_FEATURES))
    return {name: matrix[:, j] for j, name in enumerate(VELOCITY_FEATURES)}


def states_from_columns(columns: Mapping[str, Sequence[Any]], n: int) -> list[VelocityState]:
    """States from column-wise stored lists (Feast's on-demand inputs); None = no history."""
    if any(columns.get(name) is None for name in STATE_FIELDS):
        return [EMPTY] * n
    lists = [columns[name] for name in STATE_FIELDS]
    states: list[VelocityState] = []
    for i in range(n):
        row = {name: values[i] for name, values in zip(STATE_FIELDS, lists, strict=True)}
        states.append(EMPTY if _missing(row["vel_event_seconds"]) else VelocityState.from_row(row))
    return states


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return len(value) == 0


def customer_log(events: Iterable[VelocityEvent]) -> list[tuple[float, VelocityState]]:
    """One customer's offline log: after each of its transactions (in the order given, the
    offline store's time order), the event time (:func:`state_time`) and the state, each
    through :meth:`VelocityState.add` exactly as the service adds scored transactions."""
    state, stamp = EMPTY, math.nan
    log: list[tuple[float, VelocityState]] = []
    for event in events:
        state = state.add((event,))
        stamp = state_time(state, stamp)
        log.append((stamp, state))
    return log
