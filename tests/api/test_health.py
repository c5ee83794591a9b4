"""Health that tells the truth (docs/reliability.md, "Health: what each probe means"),
through the real app over a real redis-server: an empty store is not ready, a loaded one
is, an outage of a loaded store degrades without taking the pod out, a store that never
answers cannot wedge the lookup thread, and stuck scoring fails the liveness probe."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.services.label_log import LabelLog
from app.services.prediction_log import PredictionLog
from tests import redis_server as redis_fixtures
from tests.redis_server import (
    SERVICE,
    RedisServer,
    StallingProxy,
    load_record,
    redis_feast_repo,
    write_redis_yaml,
)
from tests.serving import as_request

pytestmark = pytest.mark.integration

redis_server = redis_fixtures.redis_server
redis_factory = redis_fixtures.redis_factory
redis_feast = redis_fixtures.redis_feast

FAST_CHECKS = {"feature_store_check_seconds": 0.05, "feature_store_check_consecutive": 2}


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _known(client: TestClient, recent: pd.DataFrame, **changes: Any) -> dict[str, Any]:
    """A transaction of the canary customer at the canary terminal just before the load's
    end, as the smoke test builds it (it reads ``GET /v1/features/status``; this reads
    the record from the app's own store, so the fault tests also run on older code)."""
    settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
    record = load_record(settings.feature_repo, settings.feature_store_yaml)
    body = as_request(
        recent.iloc[0],
        customer_id=record.views["customer_features"].canary,
        terminal_id=record.views["terminal_features"].canary,
        timestamp=(record.end - timedelta(seconds=1)).isoformat(),
    )
    return {**body, **changes}


def _metric(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def _redis_app(client_for: Any, repo: Path, yaml_name: str, **settings: Any) -> TestClient:
    client: TestClient = client_for(feature_repo=repo, feature_store_yaml=yaml_name, **settings)
    return client


# --- readiness -------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_an_empty_redis_is_not_ready(
    client_for: Any,
    redis_server: RedisServer,
    feast_repo: Path,
    tmp_path: Path,
    recent: pd.DataFrame,
    strict: bool,
) -> None:
    """Was 200 ``ready`` (strict too), with every answer flagged ``stale``."""
    redis_server.client(db=5).flushdb()
    repo, name = redis_feast_repo(
        feast_repo, tmp_path / "repo", redis_server.connection_string(db=5), SERVICE, load=False
    )
    client = _redis_app(client_for, repo, name, strict_readiness=strict)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["feature_store"] == {
        "status": "empty",
        "detail": f"no load record for {SERVICE}",
    }
    status = client.get("/v1/features/status").json()
    assert status["status"] == "empty" and status["record"] is None
    assert status["online_store"] == "redis" and not status["ready"]
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0])).json()
    assert "customer_features:new_entity" in answer["degraded"]
    assert not any(flag.endswith(":stale") for flag in answer["degraded"])


def test_a_loaded_redis_is_ready_and_knows_its_entities(
    client_for: Any, redis_feast: tuple[Path, str], recent: pd.DataFrame
) -> None:
    client = _redis_app(client_for, *redis_feast)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["feature_store"]["status"] == "loaded"
    status = client.get("/v1/features/status").json()  # what the smoke test does
    views, end = status["record"]["views"], datetime.fromisoformat(status["record"]["end"])
    canary = as_request(
        recent.iloc[0],
        customer_id=views["customer_features"]["canary"],
        terminal_id=views["terminal_features"]["canary"],
        timestamp=(end - timedelta(seconds=1)).isoformat(),
    )
    assert canary == _known(client, recent)
    known = client.post("/v1/predict", json=canary).json()
    assert known["degraded"] == []
    unknown = client.post("/v1/predict", json=_known(client, recent, customer_id="C-new")).json()
    assert unknown["degraded"] == ["customer_features:new_entity"]  # was ":stale"
    assert _metric(client, "fraud_feature_store_up") == 1.0
    assert _metric(client, 'fraud_feature_store_status{status="loaded"}') == 1.0


def test_features_status_shows_the_load_record(
    client_for: Any, redis_feast: tuple[Path, str]
) -> None:
    client = _redis_app(client_for, *redis_feast, api_keys="k1")
    assert client.get("/v1/features/status").status_code == 401
    status = client.get("/v1/features/status", headers={"X-API-Key": "k1"}).json()
    assert status["feature_service"] == SERVICE and status["online_store"] == "redis"
    assert status["status"] == "loaded" and status["ready"] and status["last_check"] == "loaded"
    record = status["record"]
    assert record["feature_service"] == SERVICE
    assert datetime.fromisoformat(record["loaded_at"]) > datetime.fromisoformat(record["end"])
    for view in ("customer_features", "terminal_features", "terminal_location"):
        assert record["views"][view]["entities"] > 0 and record["views"][view]["canary"]
    end = datetime.fromisoformat(record["end"]).timestamp()
    assert _metric(client, "fraud_feature_store_data_end_seconds") == pytest.approx(end)


def _sqlite_repo(feast_repo: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(feast_repo, repo)
    return repo


def test_sqlite_without_a_load_record_is_not_ready(
    client_for: Any, feast_repo: Path, tmp_path: Path
) -> None:
    repo = _sqlite_repo(feast_repo, tmp_path)
    with sqlite3.connect(repo / "data" / "online_store.db") as db:
        db.execute("DELETE FROM fraud_online_load")
    ready = client_for(feature_repo=repo).get("/readyz")
    assert ready.status_code == 503 and ready.json()["feature_store"]["status"] == "empty"


def test_a_record_whose_canaries_are_gone_is_not_ready(
    client_for: Any, feast_repo: Path, tmp_path: Path
) -> None:
    """A record is not enough: the views it describes must hold its canaries (here the
    customer table was emptied after the load)."""
    repo = _sqlite_repo(feast_repo, tmp_path)
    with sqlite3.connect(repo / "data" / "online_store.db") as db:
        db.execute("DELETE FROM fraud_detection_customer_features")
    ready = client_for(feature_repo=repo).get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["feature_store"]["status"] == "empty"
    assert "customer_features" in ready.json()["feature_store"]["detail"]


def test_a_flushed_store_turns_not_ready_after_consecutive_checks(
    client_for: Any, redis_factory: Callable[..., RedisServer], feast_repo: Path, tmp_path: Path
) -> None:
    server = redis_factory()
    repo, name = redis_feast_repo(
        feast_repo, tmp_path / "repo", server.connection_string(), SERVICE
    )
    client = _redis_app(client_for, repo, name, **FAST_CHECKS)
    assert client.get("/readyz").status_code == 200
    server.flush()
    _wait_for(lambda: client.get("/readyz").status_code == 503)
    assert client.get("/readyz").json()["feature_store"]["status"] == "empty"


# --- a transient outage ----------------------------------------------------------------


@pytest.mark.slow
def test_a_stopped_redis_degrades_and_keeps_the_pod_ready(
    client_for: Any,
    redis_factory: Callable[..., RedisServer],
    feast_repo: Path,
    tmp_path: Path,
    recent: pd.DataFrame,
) -> None:
    """Was ``ready`` and loaded forever, with lookups held up by redis-py's retries."""
    server = redis_factory()
    repo, name = redis_feast_repo(
        feast_repo, tmp_path / "repo", server.connection_string(), SERVICE
    )
    client = _redis_app(client_for, repo, name, feature_timeout_ms=50, **FAST_CHECKS)
    body = _known(client, recent)
    assert client.post("/v1/predict", json=body).json()["degraded"] == []
    server.stop()
    flags = []
    for _ in range(40):
        started = time.perf_counter()
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200
        assert time.perf_counter() - started < 0.25  # the 50 ms budget plus scoring
        flags += answer.json()["degraded"]
    assert set(flags) <= {"feature_store:error", "feature_store:timeout"} and flags
    _wait_for(lambda: client.get("/readyz").json()["feature_store"]["status"] == "unreachable")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert "loaded before" in ready.json()["feature_store"]["detail"]
    assert _metric(client, "fraud_feature_store_up") == 0.0
    assert _metric(client, 'fraud_feature_store_status{status="unreachable"}') == 1.0
    assert _metric(client, "fraud_feature_store_data_end_seconds") > 0  # the last record's
    assert 'fraud_feature_misses_total{reason="feature_store:error"}' in client.get("/metrics").text

    server.start()  # back, but empty (no persistence): now it is not ready
    _wait_for(lambda: client.get("/readyz").status_code == 503)
    assert client.get("/readyz").json()["feature_store"]["status"] == "empty"


def test_a_store_never_reached_is_not_ready(
    client_for: Any, feast_repo: Path, tmp_path: Path
) -> None:
    repo = _sqlite_repo(feast_repo, tmp_path)
    name = write_redis_yaml(repo, f"127.0.0.1:{redis_fixtures.free_port()}")
    ready = _redis_app(client_for, repo, name).get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["feature_store"]["status"] == "unreachable"
    assert "never reached" in ready.json()["feature_store"]["detail"]


# --- a store that accepts connections and never answers --------------------------------


@pytest.fixture
def stalling(redis_server: RedisServer, redis_feast: tuple[Path, str], tmp_path: Path) -> Any:
    """The loaded repository reached through a proxy that can stop answering."""
    proxy = StallingProxy(redis_server.host, redis_server.port)
    repo = tmp_path / "repo"
    shutil.copytree(redis_feast[0], repo)
    name = write_redis_yaml(repo, proxy.address)
    yield proxy, repo, name
    proxy.close()


@pytest.mark.slow
def test_a_silent_store_never_wedges_the_lookups(
    client_for: Any, stalling: Any, recent: pd.DataFrame
) -> None:
    """Was ``feature_store:busy`` for good after 32 requests: the lookup thread waited
    forever on a socket without a timeout."""
    proxy, repo, name = stalling
    client = _redis_app(client_for, repo, name, feature_timeout_ms=50, **FAST_CHECKS)
    body = _known(client, recent)
    assert client.post("/v1/predict", json=body).json()["degraded"] == []
    proxy.stall()
    slowest = 0.0
    for _ in range(60):
        started = time.perf_counter()
        answer = client.post("/v1/predict", json=body).json()
        slowest = max(slowest, time.perf_counter() - started)
        assert answer["degraded"][-1] in {"feature_store:timeout", "feature_store:error"}
    assert slowest < 0.25  # the budget plus scoring and slack
    _wait_for(lambda: client.get("/readyz").json()["feature_store"]["status"] == "unreachable")
    assert client.get("/readyz").status_code == 200  # loaded before: degraded, still ready
    assert client.get("/healthz").json() == {"status": "alive"}
    proxy.resume()
    _wait_for(lambda: client.post("/v1/predict", json=body).json()["degraded"] == [], 3.0)
    _wait_for(lambda: client.get("/readyz").json()["status"] == "ready")


@pytest.mark.slow
def test_a_stuck_lookup_thread_is_replaced(
    client_for: Any, stalling: Any, recent: pd.DataFrame
) -> None:
    """Without usable socket timeouts (10 s here) a lookup can still hang: after
    ``FEATURE_LOOKUP_ABANDON_SECONDS`` its thread is abandoned and a new one serves."""
    proxy, repo, name = stalling
    client = _redis_app(
        client_for,
        repo,
        name,
        feature_timeout_ms=50,
        feature_store_socket_timeout_ms=10_000,
        feature_lookup_abandon_seconds=0.2,
        feature_lookup_max_abandoned=2,
    )
    body = _known(client, recent)
    proxy.stall()
    assert client.post("/v1/predict", json=body).json()["degraded"] == ["feature_store:timeout"]
    time.sleep(0.3)
    proxy.resume()  # new connections answer; the abandoned thread still waits on its own
    _wait_for(lambda: client.post("/v1/predict", json=body).json()["degraded"] == [], 3.0)
    assert _metric(client, "fraud_feature_lookup_abandoned_total") >= 1
    assert client.get("/healthz").json() == {"status": "alive"}


@pytest.mark.slow
def test_stuck_scoring_fails_the_liveness_probe(
    client_for: Any, stalling: Any, recent: pd.DataFrame
) -> None:
    """With no thread left to replace, the oldest lookup ages past
    ``SCORING_STUCK_SECONDS`` and ``/healthz`` answers 503: the kubelet restarts."""
    proxy, repo, name = stalling
    client = _redis_app(
        client_for,
        repo,
        name,
        feature_timeout_ms=50,
        feature_store_socket_timeout_ms=10_000,
        feature_lookup_max_abandoned=0,
        scoring_stuck_seconds=0.3,
    )
    body = _known(client, recent)
    proxy.stall()
    assert client.post("/v1/predict", json=body).json()["degraded"] == ["feature_store:timeout"]
    assert client.get("/healthz").status_code == 200
    time.sleep(0.4)
    alive = client.get("/healthz")
    assert alive.status_code == 503 and alive.json()["status"] == "stuck"
    assert _metric(client, "fraud_feature_lookup_oldest_seconds") > 0.3
    proxy.close()  # the stuck call returns (connection closed): alive again
    _wait_for(lambda: client.get("/healthz").status_code == 200)


def test_liveness_ignores_lookups_when_not_configured(
    client_for: Any, redis_feast: tuple[Path, str]
) -> None:
    client = _redis_app(client_for, *redis_feast, scoring_stuck_seconds=0)
    assert client.get("/healthz").json() == {"status": "alive"}


# --- files that disappear, and every dependency the answers need -----------------------


def test_a_replaced_sqlite_store_is_read_at_once_and_a_deleted_one_is_flagged(
    client_for: Any, feast_repo: Path, tmp_path: Path, recent: pd.DataFrame
) -> None:
    """Was: a deleted store kept being read with no flag (``degraded: []``), and a
    replacement at the same path was ignored until a restart."""
    repo = _sqlite_repo(feast_repo, tmp_path)
    db = repo / "data" / "online_store.db"
    original = tmp_path / "original.db"
    shutil.copy(db, original)
    client = client_for(feature_repo=repo)
    body = _known(client, recent)
    assert client.post("/v1/predict", json=body).json()["degraded"] == []
    reopened = 'fraud_file_reopened_total{file="online_store"}'
    before = _metric(client, reopened) if reopened in client.get("/metrics").text else 0.0

    emptied = tmp_path / "emptied.db"  # a re-load without this customer, moved into place
    shutil.copy(original, emptied)
    with sqlite3.connect(emptied) as edit:
        edit.execute("DELETE FROM fraud_detection_customer_features")
    edit.close()
    os.replace(emptied, db)
    # The -wal beside it is still the old file's: SQLite would replay the old pages onto
    # the new file, so it is refused (flagged), never read.
    answer = client.post("/v1/predict", json=body).json()
    assert "feature_store:error" in answer["degraded"]
    for suffix in ("-wal", "-shm"):  # the documented last step of a replacement
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    answer = client.post("/v1/predict", json=body).json()
    assert "customer_features:new_entity" in answer["degraded"]

    for suffix in ("", "-wal", "-shm"):  # no store at all: every read says so
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for _ in range(3):
        assert "feature_store:error" in client.post("/v1/predict", json=body).json()["degraded"]
    shutil.copy(original, db)
    assert client.post("/v1/predict", json=body).json()["degraded"] == []
    assert _metric(client, reopened) >= before + 2


def test_readiness_follows_the_audit_log_with_hysteresis(
    client_for: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was 200 ``ready`` while every answer was 503 (audit disk full)."""
    client = client_for(file_check_seconds=0, log_health_consecutive=3)
    ready = client.get("/readyz").json()
    assert ready["audit_log"] == {"status": "writable", "detail": None}
    assert ready["label_log"] == {"status": "writable", "detail": None}

    def full_disk(self: PredictionLog, rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    body = as_request(recent.iloc[0])
    statuses = []
    with monkeypatch.context() as patch:
        patch.setattr(PredictionLog, "_commit", full_disk)
        for _ in range(3):
            assert client.post("/v1/predict", json=body).status_code == 503
            statuses.append(client.get("/readyz").status_code)
        assert statuses == [200, 200, 503]  # the third failure in a row turns it
        ready = client.get("/readyz").json()
        assert ready["status"] == "not_ready" and ready["audit_log"]["status"] == "failing"
        assert "disk is full" in ready["audit_log"]["detail"]
        assert _metric(client, 'fraud_log_writable{file="audit_log"}') == 0.0
    # Out of rotation, the pod gets no traffic: the periodic probe writes bring it back.
    audit = client.app.state.runtime.audit  # type: ignore[attr-defined]
    recovered = []
    for _ in range(3):
        audit.check()
        recovered.append(client.get("/readyz").status_code)
    assert recovered == [503, 503, 200]
    assert client.post("/v1/predict", json=body).status_code == 200


def test_a_failing_label_log_degrades_without_taking_the_pod_out(
    client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(file_check_seconds=0, log_health_consecutive=2)

    def read_only(self: LabelLog, *args: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(LabelLog, "_record_once", read_only)
    for i in range(2):
        label = {"transaction_id": f"tx-{i}", "is_fraud": True}
        assert client.post("/v1/feedback", json=label).status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert ready.json()["label_log"]["status"] == "failing"
    assert ready.json()["audit_log"]["status"] == "writable"
