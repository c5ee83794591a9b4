"""The Redis online store (Memorystore's stand-in) against a real redis-server: the load
record, new entities vs stale ones, parity with SQLite, and Memorystore's TLS."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.services.features import OnlineFeatures
from app.services.online_redis import with_timeouts
from feature_repo.online_status import (
    LoadRecord,
    UnsupportedOnlineStore,
    ViewLoad,
    read_load_record,
    write_load_record,
)
from tests import redis_server as redis_fixtures
from tests.redis_server import (
    SERVICE,
    RedisServer,
    load_record,
    make_tls_files,
    redis_feast_repo,
    write_redis_yaml,
)

pytestmark = pytest.mark.integration

redis_server = redis_fixtures.redis_server
redis_tls = redis_fixtures.redis_tls
redis_feast = redis_fixtures.redis_feast


@pytest.fixture
def redis_repo(redis_feast: tuple[Path, str]) -> tuple[Path, str]:
    """The tiny repository loaded into the session's Redis (db 0) by the online-store job."""
    return redis_feast


def _open(repo: Path, yaml_name: str, **kwargs: Any) -> OnlineFeatures:
    return OnlineFeatures.open(repo, yaml_name, SERVICE, **kwargs)


def _record(service: str = SERVICE, hours: int = 0) -> LoadRecord:
    return LoadRecord(
        feature_service=service,
        end=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=hours),
        loaded_at=datetime(2026, 5, 2, tzinfo=UTC) + timedelta(hours=hours),
        views={
            "customer_features": ViewLoad(150, "C00001"),
            "terminal_location": ViewLoad(0, None),
        },
    )


def test_load_record_json_round_trip() -> None:
    record = _record()
    assert LoadRecord.from_json(record.to_json()) == record
    naive = LoadRecord(SERVICE, datetime(2026, 5, 1), datetime(2026, 5, 2), {})
    assert naive.end.tzinfo == UTC  # naive times are taken as UTC


def test_the_load_record_lives_in_redis_and_sqlite(
    feast_repo: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    from training.inputs.feast_store import training_store

    redis_repo_dir = tmp_path / "redis"
    redis_repo_dir.mkdir()
    (redis_repo_dir / "data").mkdir()
    name = write_redis_yaml(redis_repo_dir, redis_server.connection_string(db=3))
    redis_server.client(db=3).flushdb()
    import feast

    stores = {
        "redis": feast.FeatureStore(
            repo_path=str(redis_repo_dir), fs_yaml_file=redis_repo_dir / name
        ),
        "sqlite": training_store(_sqlite_copy(feast_repo, tmp_path)),
    }
    for kind, store in stores.items():
        assert store.config.online_store.type == kind
        if kind == "redis":
            assert read_load_record(store, SERVICE) is None, kind
        write_load_record(store, _record(hours=0))
        write_load_record(store, _record("fraud_detection_v1", hours=5))
        assert read_load_record(store, SERVICE) == _record(hours=0), kind
        assert read_load_record(store) == _record("fraud_detection_v1", hours=5), kind  # newest
        write_load_record(store, _record(hours=9))  # the next load replaces it
        assert read_load_record(store, SERVICE) == _record(hours=9), kind
    assert redis_server.client(db=3).get("fraud_detection:fraud_online_load:" + SERVICE)


def _sqlite_copy(feast_repo: Path, tmp_path: Path) -> Path:
    import shutil

    repo = tmp_path / "sqlite"
    shutil.copytree(feast_repo, repo)
    return repo


def test_other_online_stores_get_a_clear_error(tmp_path: Path) -> None:
    class Config:
        project = "p"
        online_store = type("Online", (), {"type": "dynamodb"})()

    class Store:
        config = Config()

    with pytest.raises(UnsupportedOnlineStore, match="dynamodb"):
        read_load_record(Store())  # type: ignore[arg-type]
    with pytest.raises(UnsupportedOnlineStore, match="dynamodb"):
        write_load_record(Store(), _record())  # type: ignore[arg-type]


def test_the_job_writes_a_record_whose_canaries_are_found(redis_repo: tuple[Path, str]) -> None:
    features = _open(*redis_repo)
    record = read_load_record(features.store, SERVICE)
    assert record is not None and record.feature_service == SERVICE
    for view in ("customer_features", "terminal_features", "terminal_location"):
        assert record.views[view].entities > 0 and record.views[view].canary
    canaries = {view: load.canary for view, load in record.views.items()}
    assert features.missing_canaries(canaries) == []
    assert features.missing_canaries({**canaries, "customer_features": "nobody"}) == [
        "customer_features"
    ]
    features.close()


def test_a_new_entity_is_not_stale_on_redis(redis_repo: tuple[Path, str]) -> None:
    """Feast's Redis store answers a missing key with empty values and a 1970 timestamp;
    the service must read that as unknown (NaN), which it flags ``new_entity``."""
    features = _open(*redis_repo)
    record = load_record(*redis_repo)
    assert record is not None
    known = record.views["customer_features"].canary
    assert known is not None
    found = features.read({"customer_id": [known, "C-never-seen"], "terminal_id": ["T", "T"]})
    customers = found["customer_features"]
    assert not math.isnan(customers.event_seconds[0])
    assert math.isnan(customers.event_seconds[1])  # was 0.0: "stale" on the old code
    assert np.isnan(customers.values[1]).all()
    assert features.states is not None
    states, times = features.states.read([known, "C-never-seen"])
    assert math.isnan(times[1]) and states[1].events == ()
    features.close()


def test_redis_and_sqlite_return_the_same_features(
    redis_repo: tuple[Path, str], feast_repo: Path
) -> None:
    redis = _open(*redis_repo)
    sqlite = _open(feast_repo, "feature_store.yaml")
    record = load_record(*redis_repo)
    assert record is not None
    ids = {
        "customer_id": [record.views["customer_features"].canary or "", "C-never-seen"],
        "terminal_id": [record.views["terminal_features"].canary or "", "T-never-seen"],
    }
    a, b = redis.read(ids), sqlite.read(ids)
    for view in a:
        np.testing.assert_array_equal(a[view].values, b[view].values)
        np.testing.assert_array_equal(a[view].event_seconds, b[view].event_seconds)
    redis.close()
    sqlite.close()


def test_timeouts_are_added_only_when_absent() -> None:
    assert with_timeouts("h:1", 0.02) == "h:1,socket_timeout=0.02,socket_connect_timeout=0.02"
    assert (
        with_timeouts("h:1,socket_timeout=1", 0.02)
        == "h:1,socket_timeout=1,socket_connect_timeout=0.02"
    )


def test_the_service_bounds_its_redis_client(redis_repo: tuple[Path, str]) -> None:
    features = _open(*redis_repo, socket_timeout_s=0.02)
    client = features.store._get_provider().online_store._get_client(
        features.store.config.online_store
    )
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.02 and kwargs["socket_connect_timeout"] == 0.02
    assert kwargs["retry"].get_retries() == 1
    # the velocity pusher writes through the same client, so with the same bounds
    assert features.state_store()._provider is features.store._get_provider()
    features.close()


def test_the_warm_up_opens_the_connection_the_first_lookup_uses(
    redis_repo: tuple[Path, str],
) -> None:
    """A pod's first request must not pay for the connection (a TLS handshake can take
    longer than the lookup budget): load_scoring warms the lookup path before ready."""
    features = _open(*redis_repo)
    pool = (
        features.store._get_provider()
        .online_store._get_client(features.store.config.online_store)
        .connection_pool
    )
    assert pool._created_connections == 0
    features.warm_up()
    assert pool._created_connections == 1 and len(pool._available_connections) == 1
    features.read({"customer_id": ["C000000"], "terminal_id": ["T000000"]})
    features.read_states(["C000000"])
    assert pool._created_connections == 1  # the request reused it
    features.close()


# --- Memorystore TLS -------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_repo(
    feast_repo: Path, redis_tls: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The repository loaded into the TLS server through the documented connection string."""
    assert redis_tls.tls is not None
    connection = redis_tls.connection_string(
        ssl=True, ssl_ca_certs=redis_tls.tls.ca, ssl_check_hostname=False
    )
    return redis_feast_repo(
        feast_repo, tmp_path_factory.mktemp("tls") / "repo", connection, SERVICE
    )


def _tls_store(repo: Path, connection: str) -> Any:
    import feast

    name = write_redis_yaml(repo, connection, "feature_store.tls-variant.yaml")
    return feast.FeatureStore(repo_path=str(repo), fs_yaml_file=repo / name)


def test_memorystore_tls_with_the_documented_connection_string(
    tls_repo: tuple[Path, str], redis_tls: RedisServer
) -> None:
    features = _open(*tls_repo, socket_timeout_s=0.5)
    record = read_load_record(features.store, SERVICE)
    assert record is not None
    canaries = {view: load.canary for view, load in record.views.items()}
    assert features.missing_canaries(canaries) == []
    features.close()


def test_memorystore_tls_checks_the_host_name_unless_told_not_to(
    tls_repo: tuple[Path, str], redis_tls: RedisServer
) -> None:
    """Memorystore's certificate names neither 127.0.0.1 nor the IP the pod connects to:
    redis-py 7 checks the name by default and refuses."""
    import redis

    assert redis_tls.tls is not None
    plain = redis_tls.connection_string(ssl=True, ssl_ca_certs=redis_tls.tls.ca)
    with pytest.raises(redis.exceptions.ConnectionError, match="IP address mismatch"):
        read_load_record(_tls_store(tls_repo[0], plain), SERVICE)


def test_memorystore_tls_still_verifies_the_chain(
    tls_repo: tuple[Path, str], redis_tls: RedisServer, tmp_path: Path
) -> None:
    import redis

    other_ca = make_tls_files(tmp_path / "other").ca
    wrong = redis_tls.connection_string(ssl=True, ssl_ca_certs=other_ca, ssl_check_hostname=False)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        read_load_record(_tls_store(tls_repo[0], wrong), SERVICE)
