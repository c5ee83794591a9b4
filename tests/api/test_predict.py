"""Scoring through the real app: answers, reason codes, batches, and parity with Feast."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas import BatchOut, ScoreOut, TransactionIn
from app.services.feature_rows import assemble, entity_ids
from app.services.features import OnlineFeatures
from feature_repo.feast_runtime import import_feast
from feature_repo.online_request import online_request
from fraud_model.bundle import load_bundle
from tests.serving import as_request

pytestmark = pytest.mark.integration


def test_a_known_customer_is_scored_by_the_model(
    client: TestClient, recent: pd.DataFrame, tiny_bundle: Path
) -> None:
    row = recent.iloc[0]
    response = client.post("/v1/predict", json=as_request(row))
    assert response.status_code == 200, response.text
    answer = ScoreOut.model_validate(response.json())
    assert answer.transaction_id == row.transaction_id
    assert answer.decision_source == "model"
    assert answer.model_version == load_bundle(tiny_bundle).version
    assert answer.degraded == []
    assert 0 <= answer.fraud_probability <= 1
    assert answer.ae_score is not None and answer.clf_score is not None
    assert 0 < answer.latency_ms < 5_000
    assert len(response.headers["x-trace-id"]) == 32
    assert response.headers["x-request-id"]


def test_risk_level_and_decision_follow_the_tiers(
    client: TestClient, recent: pd.DataFrame, tiny_bundle: Path
) -> None:
    tiers = load_bundle(tiny_bundle).tiers
    bodies = [as_request(row) for row in recent.head(200).itertuples()]
    answers = client.post("/v1/predict/batch", json={"transactions": bodies}).json()["results"]
    mapping = {"LOW": "approve", "MEDIUM": "review", "HIGH": "step_up", "CRITICAL": "decline"}
    for answer in answers:
        assert tiers.levels(np.array([answer["fraud_probability"]]))[0] == answer["risk_level"]
        assert mapping[answer["risk_level"]] == answer["decision"]


def test_reasons_come_from_both_members(client: TestClient, recent: pd.DataFrame) -> None:
    bodies = [as_request(row) for row in recent.head(300).itertuples()]
    answers = client.post("/v1/predict/batch", json={"transactions": bodies}).json()["results"]
    sources = {reason["source"] for answer in answers for reason in answer["reasons"]}
    assert sources == {"classifier", "autoencoder"}
    for answer in answers:
        classifier = [r for r in answer["reasons"] if r["source"] == "classifier"]
        assert len(classifier) <= 3
        assert all(r["contribution"] >= 0 for r in classifier)
        contributions = [r["contribution"] for r in classifier]
        assert contributions == sorted(contributions, reverse=True)


def test_an_unknown_customer_gets_defaults_and_is_flagged(
    client: TestClient, recent: pd.DataFrame
) -> None:
    body = as_request(recent.iloc[0], customer_id="NEW-CUSTOMER-1", amount=25.0)
    answer = client.post("/v1/predict", json=body).json()
    assert answer["degraded"] == ["customer_features:new_entity"]
    assert answer["decision_source"] == "model"


def test_an_old_snapshot_is_used_but_flagged_stale(
    client: TestClient, recent: pd.DataFrame
) -> None:
    late = (recent.iloc[0].timestamp + pd.Timedelta(days=30)).isoformat()
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0], timestamp=late)).json()
    assert set(answer["degraded"]) == {"customer_features:stale", "terminal_features:stale"}


def test_a_batch_equals_single_requests_in_order(client: TestClient, recent: pd.DataFrame) -> None:
    bodies = [as_request(row) for row in recent.head(25).itertuples()]
    batch = BatchOut.model_validate(
        client.post("/v1/predict/batch", json={"transactions": bodies}).json()
    )
    assert batch.count == 25
    for body, answer in zip(bodies, batch.results, strict=True):
        single = client.post("/v1/predict", json=body).json()
        assert answer.transaction_id == body["transaction_id"]
        assert answer.fraud_probability == pytest.approx(single["fraud_probability"], abs=1e-12)
        assert answer.reasons == ScoreOut.model_validate(single).reasons


def test_the_batch_limit_is_a_setting(client_for: Any, recent: pd.DataFrame) -> None:
    client = client_for(max_batch=5)
    bodies = [as_request(row) for row in recent.head(6).itertuples()]
    response = client.post("/v1/predict/batch", json={"transactions": bodies})
    assert response.status_code == 413
    assert "at most 5" in response.json()["detail"]
    assert client.post("/v1/predict/batch", json={"transactions": []}).status_code == 422


def test_a_batch_over_the_cap_is_413_before_its_transactions_are_validated(
    client: TestClient, recent: pd.DataFrame
) -> None:
    rows = list(recent.itertuples())
    bodies = [as_request(rows[i % len(rows)], transaction_id=f"t{i}") for i in range(1_001)]
    response = client.post("/v1/predict/batch", json={"transactions": bodies})
    assert response.status_code == 413
    assert response.json() == {"detail": "at most 1000 transactions per batch"}
    bodies[-1] = {"not": "a transaction"}  # refused for its size, never validated
    assert client.post("/v1/predict/batch", json={"transactions": bodies}).status_code == 413
    assert client.post("/v1/predict/batch", content=b"").status_code == 422
    documented = client.get("/openapi.json").json()["paths"]["/v1/predict/batch"]["post"]
    assert {"413", "503"} <= set(documented["responses"])


def test_a_slow_senders_time_is_not_the_services_latency(
    settings_for: Any, recent: pd.DataFrame
) -> None:
    """``latency_ms``, the request metrics and the Live page count from the body's last
    byte: a client that takes 300 ms to send its body does not make the service look slow."""
    body = orjson.dumps(as_request(recent.iloc[0]))
    app = create_app(settings_for())

    async def scenario() -> tuple[dict[str, Any], bytes, dict[str, Any]]:
        sent: list[Any] = []
        chunks = [body[:10], body[10:]]

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(0.15)  # the client dribbles its body
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/predict",
            "raw_path": b"/v1/predict",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
        }
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)
            metrics = app.state.runtime.metrics
            live = metrics.live.snapshot(b"k") if metrics.live is not None else {}
            return orjson.loads(sent[1]["body"]), metrics.render(), live

    answer, metrics, live = asyncio.run(scenario())
    assert answer["latency_ms"] < 150
    sums = [
        line
        for line in metrics.decode().splitlines()
        if line.startswith("fraud_http_request_duration_seconds_sum")
        and 'route="/v1/predict"' in line
    ]
    assert len(sums) == 1 and float(sums[0].split()[-1]) < 0.15, sums
    assert live["latency_ms"]["/v1/predict"]["max"] < 150, live["latency_ms"]


def test_online_features_equal_feasts_own_online_path(
    feast_repo: Path, recent: pd.DataFrame
) -> None:
    """The fast path (provider online_read + shared request features) returns exactly
    what Feast's get_online_features computes for fraud_detection_v1."""
    features = OnlineFeatures.open(feast_repo, "feature_store.yaml", "fraud_detection_v1")
    rows = recent.head(20)
    transactions = [TransactionIn.model_validate(as_request(r)) for r in rows.itertuples()]
    ours = assemble(transactions, features.views, features.read(entity_ids(transactions)))

    feast = import_feast()
    store = feast.FeatureStore(repo_path=str(feast_repo))
    entity_rows = [online_request(r) for r in rows.itertuples()]
    theirs = store.get_online_features(
        features=store.get_feature_service("fraud_detection_v1"), entity_rows=entity_rows
    ).to_df()
    for name in features.feature_names:
        np.testing.assert_allclose(
            ours.columns[name], theirs[name].to_numpy(dtype=float), rtol=1e-12, err_msg=name
        )
