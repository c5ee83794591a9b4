"""Velocity states in Feast's online store: read them, and write them as the PushSource does.

The ``customer_velocity`` view holds one row of lists per customer
(``feature_repo.velocity.STATE_FIELDS``). Reads go through the same storage interface as
the batch views (the bulk SQLite or Redis reader, or the provider's ``online_read``); writes go
through the provider's ``online_write_batch``, the call ``FeatureStore.push(...,
to=PushMode.ONLINE)`` ends in. ``push`` first turns a DataFrame into Arrow and then into
the same protos, about 10 ms per call on this machine against 0.3-2 ms for the rows
themselves, so the service builds the protos directly; a stream consumer outside the
service can call ``push`` with a DataFrame of the same columns
(``tests/integration/test_velocity_push.py`` checks both write the same row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.services.online_redis import stored_row
from app.services.online_redis_reader import RedisOnlineReader, Request, fast_redis
from app.services.online_sqlite import SqliteOnlineReader, python_value
from feature_repo.velocity import STATE_FIELDS, STATE_VIEW, VelocityState

_LIST_KIND = {  # state field -> the ValueProto list it is stored as
    "vel_event_seconds": ("double_list_val", "DoubleList"),
    "vel_event_amounts": ("double_list_val", "DoubleList"),
    "vel_event_terminals": ("string_list_val", "StringList"),
    "vel_event_x_km": ("double_list_val", "DoubleList"),
    "vel_event_y_km": ("double_list_val", "DoubleList"),
    "vel_event_ids": ("string_list_val", "StringList"),
}


def states_from_rows(rows: Sequence[dict[str, Any] | None]) -> list[VelocityState]:
    """Stored state rows as states (empty for a customer without one); a row object
    repeated (a customer read for several transactions) is converted once."""
    states: dict[int, VelocityState] = {}
    out = []
    for row in rows:
        state = states.get(id(row))
        if state is None:
            state = states[id(row)] = VelocityState.from_row(row) if row else VelocityState()
        out.append(state)
    return out


class VelocityStateStore:
    """Reads and writes ``customer_velocity`` rows of one Feast ``FeatureStore``.

    Each instance has its own database connection: the request path and the background
    pusher each get one, so neither waits on the other's connection.
    """

    def __init__(self, store: Any, reader: str = "auto", busy_timeout_s: float = 5.0) -> None:
        from feast.protos.feast.types import Value_pb2
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey

        self._store = store
        self._config = store.config
        self._provider = store._get_provider()  # Feast's storage interface (see features.py)
        self.view = store.get_feature_view(STATE_VIEW, allow_registry_cache=True)
        missing = set(STATE_FIELDS) - {field.name for field in self.view.features}
        if missing:
            raise ValueError(f"view {STATE_VIEW} lacks {sorted(missing)}")
        self._entity_key = EntityKey
        self._value = Value_pb2.Value
        self._lists = {name: getattr(Value_pb2, kind) for name, (_, kind) in _LIST_KIND.items()}
        self._sqlite: SqliteOnlineReader | None = None
        self._redis: RedisOnlineReader | None = None
        if reader == "auto" and self._config.online_store.type == "sqlite":
            self._sqlite = SqliteOnlineReader(store, busy_timeout_s)
        elif reader == "auto" and fast_redis(store):
            self._redis = RedisOnlineReader(store)

    def read(self, customer_ids: Sequence[str]) -> tuple[list[VelocityState], list[float]]:
        """The stored state of each customer (empty if none) and its event time (NaN)."""
        if self._sqlite is not None:
            rows, times = self._sqlite.read_rows(
                self.view, "customer_id", STATE_FIELDS, customer_ids
            )
        elif self._redis is not None:
            rows, times = self._redis.read((), [self.request(customer_ids)])[1][0]
        else:
            rows, times = self._read_feast(customer_ids)
        return states_from_rows(rows), times

    def request(self, customer_ids: Sequence[str]) -> Request:
        """The read of these customers' states, for :class:`RedisOnlineReader`."""
        return (self.view, "customer_id", STATE_FIELDS, customer_ids)

    def _read_feast(self, ids: Sequence[str]) -> tuple[list[dict[str, Any] | None], list[float]]:
        unique = list(dict.fromkeys(ids))
        keys = [self._key(i) for i in unique]
        found = self._provider.online_read(self._config, self.view, keys, list(STATE_FIELDS))
        by_id = dict(zip(unique, found, strict=True))
        rows: list[dict[str, Any] | None] = []
        times: list[float] = []
        for entity in ids:
            timestamp, stored = by_id[entity]
            known = stored_row(timestamp, stored)  # Redis: empty values for a new customer
            rows.append({k: python_value(v) for k, v in stored.items()} if known else None)
            times.append(timestamp.timestamp() if known else math.nan)
        return rows, times

    def write(
        self, customer_ids: Sequence[str], states: Sequence[VelocityState], times: Sequence[float]
    ) -> None:
        """Store each customer's state with its event time (epoch seconds)."""
        rows = []
        for customer, state, seconds in zip(customer_ids, states, times, strict=True):
            lists = state.to_row()
            values = {
                name: self._value(**{kind: self._lists[name](val=lists[name])})
                for name, (kind, _) in _LIST_KIND.items()
            }
            event_time = datetime.fromtimestamp(seconds, tz=UTC)
            rows.append((self._key(customer), values, event_time, None))
        self._provider.online_write_batch(self._config, self.view, rows, None)

    def _key(self, customer: str) -> Any:
        return self._entity_key(
            join_keys=["customer_id"], entity_values=[self._value(string_val=customer)]
        )

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
