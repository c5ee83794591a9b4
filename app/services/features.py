"""Online features through Feast: one ``FeatureStore``, one FeatureService, read per batch.

At start-up :meth:`OnlineFeatures.open` reads the registry once and resolves the
FeatureService (``fraud_detection_v1``) into its batch feature views (join key, feature
names, TTL) and its on-demand request features. Per lookup, each batch view is read with
one ``online_read`` call for the unique entity keys of the whole batch; the request-time
features are then computed by the shared ``feature_repo.request_features`` code in
:mod:`app.services.feature_rows`, the same function Feast's on-demand view runs.

Feast's ``get_online_features`` does the same work through pandas and costs ~10 ms per
call on this machine; reading the views through the provider's ``online_read`` costs
~0.1 ms per view and returns exactly the stored values. With ``reader="auto"``, two
online stores are read by bulk readers instead: SQLite by
:class:`~app.services.online_sqlite.SqliteOnlineReader` (the same table and key encoding,
decoded in bulk: ~0.03 ms per view for one entity, 50x faster than the provider for
1,000), and Redis (``redis_type: redis``: Memorystore on GKE) by
:class:`~app.services.online_redis_reader.RedisOnlineReader`, which reads every view, the
terminal locations and the velocity states of a lookup in ONE pipeline, one HMGET per
entity hash (:meth:`OnlineFeatures.read_with_states`), where the provider makes one round
trip per view. ``reader="feast"`` always uses Feast's provider, and so does every other
online store (a Redis cluster, Sentinel).

A FeatureService with the on-demand ``velocity_features`` (``fraud_detection_v2``) also
needs each customer's velocity state (``customer_velocity``, read by
:class:`~app.services.velocity_store.VelocityStateStore`) and each terminal's location
(``terminal_location``, read like a batch view but not a model input); the features
themselves are computed by ``feature_repo.velocity`` in :mod:`app.services.feature_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app.services.online_redis import bound_redis_client, stored_row
from app.services.online_redis_reader import RedisOnlineReader, fast_redis
from app.services.online_sqlite import SqliteOnlineReader
from app.services.velocity_store import VelocityStateStore, states_from_rows
from feature_repo.feast_runtime import import_feast, online_config
from feature_repo.request_features import REQUEST_FEATURES
from feature_repo.velocity import (
    FEATURES_VIEW,
    LOCATION_VIEW,
    VELOCITY_FEATURES,
    VelocityState,
)
from fraud_model.arrays import FloatArray

FeatureReader = Literal["auto", "feast"]
WARM_UP_ID = "__warm_up__"  # an entity id no store holds


class FeatureStoreError(Exception):
    """The feature repository or its FeatureService cannot be used."""


@dataclass(frozen=True)
class ViewSpec:
    """One batch feature view of the FeatureService, resolved at start-up."""

    name: str
    join_key: str
    features: tuple[str, ...]
    ttl_seconds: float  # 0 = no TTL
    view: Any  # feast.FeatureView


@dataclass(frozen=True)
class ViewValues:
    """Values of one view for n entity ids: NaN where the store has no value."""

    values: FloatArray  # n x len(spec.features)
    event_seconds: FloatArray  # snapshot time (epoch seconds) per row, NaN if unknown entity


class OnlineFeatures:
    """Reads the batch views of one FeatureService from Feast's online store."""

    def __init__(
        self,
        store: Any,
        service_name: str,
        reader: FeatureReader = "auto",
        busy_timeout_s: float = 5.0,
        states: bool = True,
    ) -> None:
        try:
            service = store.get_feature_service(service_name, allow_cache=True)
        except Exception as exc:  # Feast raises its own not-found errors
            raise FeatureStoreError(f"feature service {service_name!r}: {exc}") from exc
        views: list[ViewSpec] = []
        request: tuple[str, ...] = ()
        velocity: tuple[str, ...] = ()
        for projection in service.feature_view_projections:
            names = tuple(field.name for field in projection.features)
            if projection.name == "transaction_request_features":
                request = names
            elif projection.name == FEATURES_VIEW:
                velocity = names
            else:
                views.append(self._spec(store, projection.name, names))
        if set(request) != set(REQUEST_FEATURES):
            raise FeatureStoreError(
                f"{service_name} request features differ from feature_repo.request_features"
            )
        if velocity and set(velocity) != set(VELOCITY_FEATURES):
            raise FeatureStoreError(
                f"{service_name} velocity features differ from feature_repo.velocity"
            )
        self.service_name = service_name
        self.views: tuple[ViewSpec, ...] = tuple(views)
        self.feature_names: tuple[str, ...] = (
            tuple(name for spec in self.views for name in spec.features)
            + REQUEST_FEATURES
            + (VELOCITY_FEATURES if velocity else ())
        )
        self._store = store
        self._config = store.config
        # The provider's online_read is Feast's storage interface (SQLite, Redis, ...);
        # FeatureStore keeps the provider private, so this is the one private access.
        self._provider = store._get_provider()
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self._entity_key = EntityKey
        self._value = Value
        self._sqlite: SqliteOnlineReader | None = None
        self._redis: RedisOnlineReader | None = None
        if reader == "auto" and self._config.online_store.type == "sqlite":
            self._sqlite = SqliteOnlineReader(store, busy_timeout_s)
        elif reader == "auto" and fast_redis(store):
            self._redis = RedisOnlineReader(store)
        self._reader_kind: FeatureReader = reader
        self._busy_timeout_s = busy_timeout_s
        # Velocity needs the state view and the terminal locations, not as model inputs.
        self.location: ViewSpec | None = None
        self.states: VelocityStateStore | None = None
        self._has_velocity = bool(velocity)
        if velocity:
            self.location = self._spec(store, LOCATION_VIEW, ("terminal_x_km", "terminal_y_km"))
        if velocity and states:
            try:
                self.states = self.state_store()
            except Exception as exc:
                raise FeatureStoreError(f"velocity state view: {exc}") from exc

    @staticmethod
    def _spec(store: Any, name: str, features: tuple[str, ...]) -> ViewSpec:
        try:
            view = store.get_feature_view(name, allow_registry_cache=True)
        except Exception as exc:
            raise FeatureStoreError(f"feature view {name!r}: {exc}") from exc
        if len(view.join_keys) != 1:
            raise FeatureStoreError(f"view {view.name} must have exactly one join key")
        ttl = view.ttl.total_seconds() if view.ttl else 0.0
        return ViewSpec(view.name, view.join_keys[0], features, ttl, view)

    @property
    def lookup_specs(self) -> tuple[ViewSpec, ...]:
        """The views a lookup reads: the batch views, and the terminal locations when the
        service has velocity features."""
        return self.views if self.location is None else (*self.views, self.location)

    def state_store(self) -> VelocityStateStore:
        """A new reader/writer of velocity states with its own connection (the pusher's)."""
        return VelocityStateStore(self._store, self._reader_kind, self._busy_timeout_s)

    def twin(self) -> OnlineFeatures:
        """Another reader of the same store and service with its own connections (for the
        readiness check, so it never shares the lookup thread's SQLite connection)."""
        return OnlineFeatures(
            self._store, self.service_name, self._reader_kind, self._busy_timeout_s, states=False
        )

    @property
    def store(self) -> Any:
        """The ``feast.FeatureStore``."""
        return self._store

    @property
    def store_type(self) -> str:
        """The online store's type (``sqlite``, ``redis``)."""
        return str(self._config.online_store.type)

    @property
    def velocity(self) -> bool:
        """Whether the FeatureService includes the velocity features."""
        return self._has_velocity

    @property
    def reader(self) -> str:
        """Which code reads the views: ``sqlite`` or ``redis`` (the bulk readers) or ``feast``."""
        if self._sqlite is not None:
            return "sqlite"
        return "redis" if self._redis is not None else "feast"

    @classmethod
    def open(
        cls,
        repo: Path,
        yaml_name: str,
        service_name: str,
        reader: FeatureReader = "auto",
        busy_timeout_s: float = 5.0,
        socket_timeout_s: float | None = None,
    ) -> OnlineFeatures:
        """Create the ``FeatureStore`` for ``repo`` (one registry read) and resolve the
        service; ``socket_timeout_s`` bounds a Redis store's calls (``online_redis``)."""
        if not (repo / yaml_name).is_file():
            raise FeatureStoreError(f"no {yaml_name} in {repo}")
        feast = import_feast()
        try:
            # Online reads only: no Spark offline store (feature_repo/feast_runtime.py).
            store = feast.FeatureStore(repo_path=str(repo), config=online_config(repo, yaml_name))
        except Exception as exc:
            raise FeatureStoreError(f"feature store in {repo} cannot be opened: {exc}") from exc
        if socket_timeout_s is not None:
            try:
                bound_redis_client(store, socket_timeout_s)
            except Exception as exc:  # an unparsable connection string
                raise FeatureStoreError(f"online store of {repo / yaml_name}: {exc}") from exc
        return cls(store, service_name, reader, busy_timeout_s)

    def read(self, entity_ids: Mapping[str, Sequence[str]]) -> dict[str, ViewValues]:
        """Values of every batch view (and the terminal locations, when the service has
        velocity features) for the given ids (join key -> one id per row)."""
        specs = self.lookup_specs
        if self._redis is not None:
            return self._read_redis(specs, entity_ids, ())[0]
        return {spec.name: self._read_view(spec, entity_ids[spec.join_key]) for spec in specs}

    def read_with_states(
        self, entity_ids: Mapping[str, Sequence[str]], customer_ids: Sequence[str]
    ) -> tuple[dict[str, ViewValues], list[VelocityState]]:
        """:meth:`read` and :meth:`read_states` together: one round trip on Redis."""
        if self._redis is None or self.states is None:
            return self.read(entity_ids), self.read_states(customer_ids)
        specs = self.lookup_specs
        return self._read_redis(specs, entity_ids, customer_ids)

    def _read_redis(
        self,
        specs: Sequence[ViewSpec],
        entity_ids: Mapping[str, Sequence[str]],
        customer_ids: Sequence[str],
    ) -> tuple[dict[str, ViewValues], list[VelocityState]]:
        assert self._redis is not None
        requests = [(s.view, s.join_key, s.features, entity_ids[s.join_key]) for s in specs]
        rows = [self.states.request(customer_ids)] if self.states and customer_ids else []
        found, states = self._redis.read(requests, rows)
        views = {spec.name: ViewValues(*values) for spec, values in zip(specs, found, strict=True)}
        return views, states_from_rows(states[0][0]) if states else []

    def missing_canaries(self, canaries: Mapping[str, str | None]) -> list[str]:
        """The views (batch views, and terminal locations with velocity) whose canary
        entity (view -> id, from the load record) is not found by :meth:`read`; a view
        without a canary counts as not loaded."""
        specs = self.lookup_specs
        ids: dict[str, list[str]] = {spec.join_key: [] for spec in specs}
        for spec in specs:
            canary = canaries.get(spec.name)
            if canary is not None:
                ids[spec.join_key].append(canary)
        found = self.read(ids) if any(ids.values()) else {}
        missing = []
        for spec in specs:
            canary = canaries.get(spec.name)
            if canary is None:
                missing.append(spec.name)
                continue
            row = ids[spec.join_key].index(canary)
            if np.isnan(found[spec.name].event_seconds[row]):
                missing.append(spec.name)
        return missing

    def warm_up(self) -> None:
        """Read an id no store holds through every view (and the velocity state): the
        lookup path's first connection (for Redis with TLS, a handshake that can take longer
        than the lookup budget) is opened at start-up, not by the first request. A no-op
        for SQLite: a file costs nothing to open, and one opened early would keep being
        read after it is deleted."""
        if self._config.online_store.type == "sqlite":
            return
        ids = {key: [WARM_UP_ID] for key in {spec.join_key for spec in self.views}}
        ids.setdefault("customer_id", [WARM_UP_ID])
        ids.setdefault("terminal_id", [WARM_UP_ID])
        self.read(ids)
        self.read_states([WARM_UP_ID])

    def read_states(self, customer_ids: Sequence[str]) -> list[VelocityState]:
        """The stored velocity state of each customer (empty when none)."""
        if self.states is None:
            return [VelocityState() for _ in customer_ids]
        return self.states.read(customer_ids)[0]

    def _read_view(self, spec: ViewSpec, ids: Sequence[str]) -> ViewValues:
        if self._sqlite is not None:
            return ViewValues(*self._sqlite.read(spec.view, spec.join_key, spec.features, ids))
        return self._read_view_feast(spec, ids)

    def _read_view_feast(self, spec: ViewSpec, ids: Sequence[str]) -> ViewValues:
        unique = list(dict.fromkeys(ids))
        keys = [
            self._entity_key(join_keys=[spec.join_key], entity_values=[self._value(string_val=i)])
            for i in unique
        ]
        rows = self._provider.online_read(self._config, spec.view, keys, list(spec.features))
        by_id = dict(zip(unique, rows, strict=True))
        values = np.full((len(ids), len(spec.features)), np.nan)
        event_seconds = np.full(len(ids), np.nan)
        for i, entity in enumerate(ids):
            timestamp, stored = by_id[entity]
            if not stored_row(timestamp, stored):
                continue
            event_seconds[i] = timestamp.timestamp()
            for j, name in enumerate(spec.features):
                value = stored.get(name)
                kind = value.WhichOneof("val") if value is not None else None
                if kind is not None:
                    values[i, j] = float(getattr(value, kind))
        return ViewValues(values, event_seconds)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self.states is not None:
            self.states.close()
