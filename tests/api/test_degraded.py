"""Faults degrade, never fail: no bundle -> rules; no, slow or broken feature store ->
request-only features, flagged, within the time budget."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

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
    assert all(r["source"] == "rules" for r in answer["reasons"])
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
    assert client.get("/readyz").json()["feature_store"]["status"] == "unavailable"
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
