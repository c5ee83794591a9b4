"""The Redis online store (Memorystore's stand-in) against a real redis-server: the load
record, new entities vs stale ones, parity with SQLite, and Memorystore's TLS."""

from __future__ import annotations

import math
import time
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
    StallingProxy,
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


# --- the one-round-trip reader (app/services/online_redis_reader.py) ------------------


def _same_lookup(
    fast: OnlineFeatures, feast: OnlineFeatures, ids: dict[str, list[str]]
) -> dict[str, Any]:
    """Assert the fast reader's lookup equals the provider path's, bit for bit; return it."""
    customers = ids["customer_id"]
    ours, states = fast.read_with_states(ids, customers)
    theirs = feast.read(ids)
    assert ours.keys() == theirs.keys() == {*(s.name for s in fast.views), "terminal_location"}
    for view in ours:
        for mine, expected in (
            (ours[view].values, theirs[view].values),
            (ours[view].event_seconds, theirs[view].event_seconds),
        ):
            assert mine.shape == expected.shape and mine.dtype == expected.dtype
            np.testing.assert_array_equal(np.isnan(mine), np.isnan(expected))
            assert mine.tobytes() == expected.tobytes(), view
    assert fast.states is not None and feast.states is not None
    assert states == feast.read_states(customers)
    mine_states, mine_times = fast.states.read(customers)  # the pusher's reader
    their_states, their_times = feast.states.read(customers)
    assert mine_states == their_states == states
    np.testing.assert_array_equal(mine_times, their_times)
    return {"views": ours, "states": states, "times": mine_times}


def test_the_fast_redis_reader_returns_what_feast_returns(
    redis_repo: tuple[Path, str], tiny_stream: Any
) -> None:
    """Known, unknown and repeated entities, as a batch and one at a time: every batch
    view, the terminal locations and the velocity states equal the provider's read."""
    fast, feast = _open(*redis_repo), _open(*redis_repo, reader="feast")
    assert (fast.reader, feast.reader) == ("redis", "feast")
    recent = tiny_stream.tail(300)
    ids = {
        "customer_id": [*recent.customer_id, "C-never-seen", recent.customer_id.iloc[0]],
        "terminal_id": [*recent.terminal_id, "T-never-seen", recent.terminal_id.iloc[0]],
    }
    whole = _same_lookup(fast, feast, ids)
    for i in (0, 150, 299, 300, 301):
        _same_lookup(fast, feast, {key: [value[i]] for key, value in ids.items()})
    for found in whole["views"].values():  # the data was read, and the new entity is new
        assert not np.isnan(found.event_seconds[:-2]).any()
        assert np.isnan(found.event_seconds[-2]) and np.isnan(found.values[-2]).all()
    known = [state for state in whole["states"][:-2] if state.events]
    assert len(known) > 100 and whole["states"][-2].events == ()
    assert math.isnan(whole["times"][-2]) and not math.isnan(whole["times"][0])
    assert whole["states"][-1] == whole["states"][0]  # a repeated customer
    fast.close()
    feast.close()


def test_the_fast_redis_reader_agrees_on_partly_stored_entities(
    redis_repo: tuple[Path, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    """Hashes the load never writes: some fields only, an event time without values,
    values without an event time, another view's fields only, a non-double value and an
    empty value; the fast reader must read them as Feast's provider path does."""
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    db = 7
    repo, name = redis_feast_repo(
        redis_repo[0], tmp_path / "repo", redis_server.connection_string(db=db), SERVICE, False
    )
    raw = redis_server.client(db=db)
    raw.flushdb()
    fast, feast = _open(repo, name), _open(repo, name, reader="feast")
    store = feast.store
    view = store.get_feature_view("customer_features")
    features = [field.name for field in view.features]
    when = datetime(2026, 4, 30, 12, 0, 0, 123456, tzinfo=UTC)

    def key(customer: str) -> bytes:
        entity = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer)])
        version = store.config.entity_key_serialization_version
        return bytes(_redis_key(store.config.project, entity, version))

    def write(customer: str, values: dict[str, Value]) -> None:
        entity = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer)])
        store._get_provider().online_write_batch(
            store.config, view, [(entity, values, when, None)], None
        )

    write("C-partial", {features[0]: Value(double_val=1.5), features[3]: Value(double_val=-0.0)})
    write("C-ts-only", {features[0]: Value(double_val=2.0)})
    raw.hdel(key("C-ts-only"), _mmh3(f"customer_features:{features[0]}"))
    write("C-no-ts", {features[0]: Value(double_val=3.0)})
    raw.hdel(key("C-no-ts"), "_ts:customer_features")
    write("C-int", {features[0]: Value(int64_val=7), features[1]: Value(double_val=float("nan"))})
    write("C-empty", {features[0]: Value(), features[1]: Value(double_val=4.0)})
    assert fast.states is not None
    fast.states.write(["C-state-only"], [_state()], [when.timestamp()])
    customers = ["C-partial", "C-ts-only", "C-no-ts", "C-int", "C-empty", "C-state-only"]
    found = _same_lookup(fast, feast, {"customer_id": customers, "terminal_id": ["T"] * 6})
    views = found["views"]["customer_features"]
    assert views.values[0, 0] == 1.5 and np.isnan(views.values[0, 1])
    assert math.copysign(1.0, views.values[0, 3]) == -1.0
    assert views.event_seconds[0] == when.timestamp()
    assert np.isnan(views.event_seconds[[1, 2, 5]]).all()  # unknown, never stale
    assert views.values[3, 0] == 7.0 and np.isnan(views.values[3, 1])
    assert np.isnan(views.values[4, 0]) and views.values[4, 1] == 4.0
    assert found["states"][5] == _state() and found["states"][0].events == ()
    raw.flushdb()
    fast.close()
    feast.close()


def _state() -> Any:
    from feature_repo.velocity import VelocityEvent, VelocityState

    return VelocityState((VelocityEvent(1_777_550_000.0, 12.5, "T1", 1.0, 2.0, "tx-1"),))


def test_a_whole_lookup_is_one_round_trip(
    redis_repo: tuple[Path, str], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Views, terminal locations and velocity states: one pipeline, one HMGET per
    distinct entity hash (Feast's provider path: one pipeline per view and the states)."""
    import redis

    executions: list[int] = []
    original = redis.client.Pipeline.execute

    def counting(pipe: Any, *args: Any, **kwargs: Any) -> Any:
        executions.append(len(pipe.command_stack))
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    observer = redis_server.client()

    def hmgets() -> int:
        stats = observer.info("commandstats").get("cmdstat_hmget", {"calls": 0})
        return int(stats["calls"])

    record = load_record(*redis_repo)
    assert record is not None
    customer = record.views["customer_features"].canary or ""
    terminal = record.views["terminal_features"].canary or ""
    one = {"customer_id": [customer], "terminal_id": [terminal]}
    many = {"customer_id": [customer, "C-new", customer], "terminal_id": [terminal, "T-new", "T"]}
    for reader, ids, pipelines, commands in (
        ("auto", one, [2], 2),  # one customer hash, one terminal hash
        ("auto", many, [5], 5),  # distinct hashes only: 2 customers, 3 terminals
        ("feast", one, [1, 1, 1, 1], 4),  # 3 views and the states, one call each
    ):
        features = _open(*redis_repo, reader=reader)
        features.warm_up()
        executions.clear()
        before = hmgets()
        views, states = features.read_with_states(ids, ids["customer_id"])
        assert executions == pipelines, reader
        assert hmgets() - before == commands, reader
        assert not np.isnan(views["customer_features"].event_seconds[0])
        assert len(states) == len(ids["customer_id"])
        features.close()


def test_a_stalled_redis_fails_the_fast_lookup_within_the_socket_timeout(
    redis_repo: tuple[Path, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    proxy = StallingProxy(redis_server.host, redis_server.port)
    try:
        repo, name = redis_feast_repo(
            redis_repo[0], tmp_path / "repo", proxy.address, SERVICE, False
        )
        features = _open(repo, name, socket_timeout_s=0.2)
        assert features.reader == "redis"
        ids = {"customer_id": ["C000000"], "terminal_id": ["T000000"]}
        features.read_with_states(ids, ids["customer_id"])  # answered through the proxy
        proxy.stall()
        started = time.perf_counter()
        with pytest.raises(redis.exceptions.TimeoutError):
            features.read_with_states(ids, ids["customer_id"])
        assert time.perf_counter() - started < 0.6
        features.close()
    finally:
        proxy.close()


def test_only_a_plain_redis_gets_the_fast_reader() -> None:
    from app.services.online_redis_reader import fast_redis

    def store(**online: Any) -> Any:
        config = type("Config", (), {"online_store": type("Online", (), online)()})()
        return type("Store", (), {"config": config})()

    assert fast_redis(store(type="redis", redis_type="redis", client="redis"))
    assert not fast_redis(store(type="redis", redis_type="redis_cluster", client="redis"))
    assert not fast_redis(store(type="redis", redis_type="redis_sentinel", client="redis"))
    assert not fast_redis(store(type="redis", redis_type="redis", client="glide"))
    assert not fast_redis(store(type="sqlite"))
