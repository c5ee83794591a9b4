"""The load record of an online store: what the last load put in it, and up to when.

The job that loads an online store (``training/materialize.py``) writes a
:class:`LoadRecord` once it has finished; the scoring service reads it to tell a loaded
store from an empty one (``/readyz``), to pick known entities for smoke tests
(``GET /v1/features/status``) and to export the age of the data (``/metrics``). The
record lives in the online store itself, so it is gone when the store's data is gone:

- **Redis** (Memorystore): a plain string key ``{project}:fraud_online_load:{service}``
  holding the JSON, written with a client built from the store's own
  ``online_store.connection_string`` exactly as Feast builds its own (same parser, so
  ``ssl=true,ssl_check_hostname=false,...`` mean the same thing to both);
- **SQLite**: a row of the table ``fraud_online_load`` in the online store's database
  file, next to Feast's tables.

Other online store types raise :class:`UnsupportedOnlineStore`. This module imports
neither ``app`` nor ``training``: both sides use it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import feast

KEY_PREFIX = "fraud_online_load"
SQLITE_TABLE = "fraud_online_load"


class UnsupportedOnlineStore(ValueError):
    """The online store type has no place for a load record (only redis and sqlite do)."""


def _utc(moment: datetime) -> datetime:
    """Aware and in UTC (a naive time is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class ViewLoad:
    """What one feature view received."""

    entities: int  # entities loaded
    canary: str | None  # one entity id (join key value) loaded with the newest data


@dataclass(frozen=True)
class LoadRecord:
    """What the last load of an online store put in it for one FeatureService."""

    feature_service: str
    end: datetime  # the data is current up to here (UTC)
    loaded_at: datetime  # when the job wrote it (UTC)
    views: dict[str, ViewLoad] = field(default_factory=dict)  # view name -> what was loaded

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", _utc(self.end))
        object.__setattr__(self, "loaded_at", _utc(self.loaded_at))

    def to_json(self) -> str:
        return json.dumps(
            {
                "feature_service": self.feature_service,
                "end": self.end.isoformat(),
                "loaded_at": self.loaded_at.isoformat(),
                "views": {
                    name: {"entities": view.entities, "canary": view.canary}
                    for name, view in sorted(self.views.items())
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LoadRecord:
        data = json.loads(text)
        return cls(
            feature_service=str(data["feature_service"]),
            end=datetime.fromisoformat(data["end"]),
            loaded_at=datetime.fromisoformat(data["loaded_at"]),
            views={
                str(name): ViewLoad(
                    int(view["entities"]), None if view["canary"] is None else str(view["canary"])
                )
                for name, view in data.get("views", {}).items()
            },
        )


def write_load_record(store: feast.FeatureStore, record: LoadRecord) -> None:
    """Store ``record`` in ``store``'s online store (replacing that service's last one)."""
    config = store.config
    kind = config.online_store.type
    if kind == "redis":
        client = _redis_client(config.online_store)
        try:
            client.set(_redis_key(config.project, record.feature_service), record.to_json())
        finally:
            client.close()
    elif kind == "sqlite":
        path = _sqlite_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=30) as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} "
                "(feature_service TEXT PRIMARY KEY, record TEXT NOT NULL)"
            )
            connection.execute(
                f"INSERT OR REPLACE INTO {SQLITE_TABLE} VALUES (?, ?)",
                (record.feature_service, record.to_json()),
            )
        connection.close()
    else:
        raise UnsupportedOnlineStore(f"no load record for a {kind!r} online store")


def read_load_record(
    store: feast.FeatureStore, feature_service: str | None = None
) -> LoadRecord | None:
    """The record of ``feature_service`` (default: the newest record of any service);
    None when the store holds none. Connection errors propagate."""
    config = store.config
    kind = config.online_store.type
    if kind == "redis":
        texts = _read_redis(config, feature_service)
    elif kind == "sqlite":
        texts = _read_sqlite(_sqlite_path(config), feature_service)
    else:
        raise UnsupportedOnlineStore(f"no load record for a {kind!r} online store")
    records = [LoadRecord.from_json(text) for text in texts]
    return max(records, key=lambda r: r.loaded_at, default=None)


def _redis_key(project: str, feature_service: str) -> str:
    return f"{project}:{KEY_PREFIX}:{feature_service}"


def _redis_client(online_store: Any, **overrides: Any) -> Any:
    """A redis-py client for the store's ``connection_string``, built as Feast builds its
    own (``RedisOnlineStore._get_client``), with ``overrides`` as extra keyword arguments."""
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisType
    from redis import Redis, RedisCluster
    from redis.cluster import ClusterNode
    from redis.sentinel import Sentinel

    node_of: Any = ClusterNode  # redis-py leaves these two untyped
    sentinel_of: Any = Sentinel

    nodes, kwargs = RedisOnlineStore._parse_connection_string(online_store.connection_string)
    kwargs.update(overrides)
    if online_store.redis_type == RedisType.redis_cluster:
        return RedisCluster(startup_nodes=[node_of(**node) for node in nodes], **kwargs)
    if online_store.redis_type == RedisType.redis_sentinel:
        hosts = [(node["host"], int(node["port"])) for node in nodes]
        return sentinel_of(hosts, **kwargs).master_for(online_store.sentinel_master)
    return Redis(host=nodes[0]["host"], port=nodes[0]["port"], **kwargs)


def _read_redis(config: Any, feature_service: str | None) -> list[str]:
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    # One immediate retry for a dropped connection; redis-py's default backs off for
    # seconds, longer than anyone reading a status wants to wait.
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    client = _redis_client(config.online_store, retry=retry)
    try:
        if feature_service is not None:
            keys = [_redis_key(config.project, feature_service)]
        else:
            pattern = _redis_key(config.project, "*")
            keys = sorted(client.scan_iter(match=pattern, count=100))
        texts = [client.get(key) for key in keys]
    finally:
        client.close()
    return [t.decode() if isinstance(t, bytes) else str(t) for t in texts if t is not None]


def _sqlite_path(config: Any) -> Path:
    """The database file, resolved as Feast resolves it (relative to the repository)."""
    path = Path(config.online_store.path)
    if config.repo_path and not path.is_absolute():
        path = Path(config.repo_path) / path
    return path


def _read_sqlite(path: Path, feature_service: str | None) -> list[str]:
    if not path.is_file():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SQLITE_TABLE,)
        ).fetchone()
        if exists is None:
            return []
        if feature_service is None:
            query = f"SELECT record FROM {SQLITE_TABLE}"  # nosec B608 # a module constant
            rows = connection.execute(query).fetchall()
        else:
            query = f"SELECT record FROM {SQLITE_TABLE} WHERE feature_service = ?"  # nosec B608
            rows = connection.execute(query, (feature_service,)).fetchall()
    finally:
        connection.close()
    return [str(row[0]) for row in rows]
