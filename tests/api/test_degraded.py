"""Faults degrade, never fail: no, truncated or tampered bundle -> rules (and a reload
picks up a valid one); a missing, locked, corrupt or slow feature store -> request-only
features, flagged, within the time budget; an unreachable trace collector -> nothing."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pandas as pd
import pytest

from app.services.features import OnlineFeatures
from tests.serving import as_request

pytestmark = pytest.mark.integration


def _tampered(tiny_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, copy)
    with (copy / "classifier.txt").open("a") as handle:
        handle.write("\n")
    return copy


@pytest.mark.parametrize("problem", ["missing", "tampered"])
def test_without_a_valid_bundle_the_rules_score(
    client_for: Any, recent: pd.DataFrame, tiny_bundle: Path, tmp_path: Path, problem: str
) -> None:
    uri = tmp_path / "nowhere" if problem == "missing" else _tampered(tiny_bundle, tmp_path)
    client = client_for(bundle_uri=str(uri))
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["model"]["status"] == "fallback"
    model = client.get("/v1/model").json()
    assert model["decision_source"] == "rules_fallback"
    assert model["version"] == "rules-v1"
    assert ("does not match its SHA-256" if problem == "tampered" else "no bundle") in model[
        "problem"
    ]

    normal = client.post("/v1/predict", json=as_request(recent.iloc[0], amount=20.0)).json()
    assert normal["decision_source"] == "rules_fallback"
    assert normal["ae_score"] is None and normal["clf_score"] is None
    assert normal["decision"] == "approve"
    risky = as_request(
        recent.iloc[0],
        amount=9_000.0,
        distance_from_home_km=2_000.0,
        is_foreign=True,
        channel="online",
    )
    answer = client.post("/v1/predict", json=risky).json()
    assert answer["risk_level"] == "CRITICAL"
    assert {r["code"] for r in answer["reasons"]} >= {"VERY_LARGE_AMOUNT", "FAR_FROM_HOME"}
    fallback = [r for r in answer["reasons"] if r["source"] != "rule"]  # not the rule set's
    assert fallback and all(r["source"] == "rules" for r in fallback)
    metrics = client.get("/metrics").text
    assert "fraud_rules_fallback_total 2.0" in metrics
    assert "fraud_model_loaded 0.0" in metrics


def test_strict_readiness_refuses_traffic_without_a_model(client_for: Any, tmp_path: Path) -> None:
    client = client_for(bundle_uri=str(tmp_path / "nowhere"), strict_readiness=True)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"


def test_without_a_feature_repo_answers_use_request_fields(
    client_for: Any, recent: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(feature_repo=tmp_path / "no-repo")
    ready = client.get("/readyz")  # a misconfigured pod takes no traffic (it used to: 200)
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert ready.json()["feature_store"]["status"] == "unavailable"
    assert "no feature_store.yaml" in ready.json()["feature_store"]["detail"]
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0])).json()
    assert answer["degraded"] == ["feature_store:unavailable"]
    assert answer["decision_source"] == "model"


def test_a_missing_online_database_is_an_error_not_a_failure(
    client_for: Any, recent: pd.DataFrame, feast_repo: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(feast_repo, repo)
    client = client_for(feature_repo=repo)
    (repo / "data" / "online_store.db").unlink()
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0])).json()
    assert answer["degraded"] == ["feature_store:error"]
    assert "feature_store:error" in client.get("/metrics").text


def test_a_slow_store_is_abandoned_within_the_budget(
    client_for: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = OnlineFeatures.read

    def slow(self: OnlineFeatures, ids: Any) -> Any:
        time.sleep(0.5)
        return original(self, ids)

    monkeypatch.setattr(OnlineFeatures, "read", slow)
    client = client_for(feature_timeout_ms=30)
    started = time.perf_counter()
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0])).json()
    elapsed = time.perf_counter() - started
    assert answer["degraded"] == ["feature_store:timeout"]
    assert answer["latency_ms"] < 300  # the budget (30 ms) plus scoring, far below 500 ms
    assert elapsed < 0.45


def test_a_stuck_store_does_not_queue_unbounded_work(
    client_for: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OnlineFeatures, "read", lambda self, ids: time.sleep(0.3))
    client = client_for(feature_timeout_ms=5)
    client.app.state.runtime.service.max_pending = 2  # type: ignore[attr-defined]
    flags = [
        client.post("/v1/predict", json=as_request(recent.iloc[0])).json()["degraded"][0]
        for _ in range(4)
    ]
    assert flags[:2] == ["feature_store:timeout", "feature_store:timeout"]
    assert "feature_store:busy" in flags[2:]


def _repo_copy(feast_repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    shutil.copytree(feast_repo, repo)
    return repo, repo / "data" / "online_store.db"


def test_a_writer_does_not_hold_up_reads_of_a_wal_store(
    client_for: Any, recent: pd.DataFrame, feast_repo: Path, tmp_path: Path
) -> None:
    """The materialize stage leaves the SQLite online store in WAL mode: a
    materialization or a velocity push holding the write lock never stalls a lookup."""
    repo, database = _repo_copy(feast_repo, tmp_path)
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    client = client_for(feature_repo=repo, feature_timeout_ms=50)
    body = as_request(recent.iloc[0])
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        answers = [client.post("/v1/predict", json=body).json() for _ in range(3)]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [a["degraded"] for a in answers] == [[], [], []]


def test_a_locked_store_answers_within_the_budget_and_recovers(
    client_for: Any, recent: pd.DataFrame, feast_repo: Path, tmp_path: Path
) -> None:
    repo, database = _repo_copy(feast_repo, tmp_path)
    with sqlite3.connect(database) as rollback_journal:  # a store not set up by the stage
        rollback_journal.execute("PRAGMA journal_mode=DELETE")
    client = client_for(feature_repo=repo, feature_timeout_ms=50)
    body = as_request(recent.iloc[0])
    assert client.post("/v1/predict", json=body).json()["degraded"] == []
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # a materialization holding the write lock
    try:
        answers = [client.post("/v1/predict", json=body).json() for _ in range(3)]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    for answer in answers:
        assert answer["degraded"][0] in {"feature_store:timeout", "feature_store:error"}
        assert answer["decision_source"] == "model"
        assert answer["latency_ms"] < 250  # the 50 ms budget plus scoring, not SQLite's 5 s
    time.sleep(0.1)  # the abandoned lookup gives up at its own busy timeout
    assert client.post("/v1/predict", json=body).json()["degraded"] == []


def test_a_corrupt_store_is_an_error_and_a_repaired_one_is_used_again(
    client_for: Any, recent: pd.DataFrame, feast_repo: Path, tmp_path: Path
) -> None:
    repo, database = _repo_copy(feast_repo, tmp_path)
    client = client_for(feature_repo=repo)
    body = as_request(recent.iloc[0])
    good = client.post("/v1/predict", json=body).json()
    assert good["degraded"] == []
    original = database.read_bytes()
    database.write_bytes(b"this is not a SQLite database " * 200)
    broken = client.post("/v1/predict", json=body).json()
    assert broken["degraded"] == ["feature_store:error"]
    assert broken["fraud_probability"] != good["fraud_probability"]  # request fields only
    database.write_bytes(original)
    assert client.post("/v1/predict", json=body).json() == {
        **good,
        "latency_ms": ANY,
    }


def test_a_truncated_bundle_is_refused_and_a_valid_one_is_reloaded(
    client_for: Any, recent: pd.DataFrame, tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    classifier = bundle / "classifier.txt"
    text = classifier.read_bytes()
    classifier.write_bytes(text[: len(text) // 2])  # an interrupted copy
    client = client_for(bundle_uri=str(bundle))
    assert client.get("/readyz").json()["model"]["status"] == "fallback"
    assert "classifier.txt does not match" in client.get("/v1/model").json()["problem"]
    body = as_request(recent.iloc[0])
    assert client.post("/v1/predict", json=body).json()["decision_source"] == "rules_fallback"

    classifier.write_bytes(text)  # the deployment finishes copying
    reloaded = client.post("/v1/model/reload")
    assert reloaded.status_code == 200
    version = reloaded.json()["version"]
    assert reloaded.json() == {
        "status": "reloaded",
        "version": version,
        "previous_version": "rules-v1",
        "problem": None,
    }
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.post("/v1/predict", json=body).json()["model_version"] == version
    assert "fraud_model_loaded 1.0" in client.get("/metrics").text

    (bundle / "bundle.json").write_text("{}")  # a tampered bundle never replaces a good one
    refused = client.post("/v1/model/reload")
    assert refused.status_code == 409
    assert refused.json()["status"] == "refused" and refused.json()["version"] == version
    assert "bundle.json does not match" in refused.json()["problem"]
    assert client.post("/v1/predict", json=body).json()["decision_source"] == "model"


@pytest.mark.parametrize("collector", ["refused", "silent"])
def test_an_unreachable_collector_changes_nothing(
    client_for: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, collector: str
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if collector == "silent":
        listener.listen(64)  # accepts connections and never answers
    else:
        listener.close()  # connections are refused
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")  # export every 10 ms: keep it busy
    bodies = [as_request(row) for row in recent.head(40).itertuples()]
    plain = client_for()
    expected = [plain.post("/v1/predict", json=b).json()["fraud_probability"] for b in bodies]
    traced = client_for(otel_traces_exporter="otlp")
    answers = [traced.post("/v1/predict", json=b) for b in bodies]
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert [a.json()["fraud_probability"] for a in answers] == expected
    assert all("x-trace-id" in a.headers for a in answers)
    # Exports run on the span processor's thread: an answer never waits for one (each
    # export here blocks for up to its 2 s timeout).
    assert max(a.json()["latency_ms"] for a in answers) < 500
    listener.close()
