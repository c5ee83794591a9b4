"""Bound every call the service makes to a Redis online store by the lookup budget.

redis-py waits forever by default: no socket timeout, and since redis-py 6 a failed
command is retried three times with exponential backoff (1, 2, 4 ... seconds, capped at
10). A Redis that accepts connections but never answers (a TLS port spoken to in plain
text) then holds the one lookup thread for good, and an unreachable one holds it for
seconds per lookup. The service therefore, before Feast creates its client:

- appends ``socket_timeout`` and ``socket_connect_timeout`` (``FEATURE_STORE_SOCKET_TIMEOUT_MS``)
  to the store's ``connection_string`` when the string does not set them itself; Feast
  json-decodes ``key=value`` pairs into keyword arguments of ``redis.Redis``, so the
  values arrive as floats. The shared connection Secret, which the bulk load job also
  uses, is left alone: this changes the service's in-memory configuration only;
- replaces the client's retry policy with one immediate retry on a dropped connection
  (a pooled connection Redis closed, e.g. after a restart) and none on a timeout: the
  budget is spent by then.

Feast's one client (a connection pool) serves the lookups, the readiness check and the
velocity pusher alike, so all of them get the same bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

TIMEOUT_KEYS = ("socket_timeout", "socket_connect_timeout")


def with_timeouts(connection_string: str, seconds: float) -> str:
    """``connection_string`` with each of :data:`TIMEOUT_KEYS` it lacks set to ``seconds``."""
    parts = connection_string.split(",")
    present = {part.split("=", 1)[0].strip() for part in parts if "=" in part}
    extra = [f"{key}={seconds:g}" for key in TIMEOUT_KEYS if key not in present]
    return ",".join([connection_string, *extra]) if extra else connection_string


def bound_redis_client(store: Any, socket_timeout_s: float) -> None:
    """Apply the timeouts and the retry policy to ``store``'s Redis online store (a no-op
    for any other store). Call it before the store's first read or write."""
    online = store.config.online_store
    if online.type != "redis":
        return
    from feast.infra.online_stores.redis import RedisType
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    online.connection_string = with_timeouts(online.connection_string, socket_timeout_s)
    if online.redis_type == RedisType.redis_cluster:
        return  # the cluster client connects on creation; it keeps its own retry policy
    # Feast creates the client lazily and keeps it on its online store, which the
    # provider keeps private; creating it here (no connection yet) lets us set its policy.
    client = store._get_provider().online_store._get_client(online)
    client.set_retry(Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))


def stored_row(timestamp: datetime | None, stored: Mapping[str, Any] | None) -> bool:
    """Whether an ``online_read`` result is a stored row, not an unknown entity.

    Feast's SQLite store returns ``(None, None)`` for an unknown entity, but its Redis
    store returns a dict of *empty* ``ValueProto``s with a 1970 timestamp (it fills a
    missing key's fields with defaults): that is an unknown entity too, never a stale one.
    """
    if not stored or timestamp is None or timestamp.timestamp() == 0:
        return False
    return any(value.WhichOneof("val") is not None for value in stored.values())
