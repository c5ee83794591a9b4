"""Health, readiness, the model card endpoint, Prometheus metrics and the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from fraud_model.bundle import load_bundle
from tests.serving import as_request

pytestmark = pytest.mark.integration


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    store = ready.json()["feature_store"]
    assert store["status"] == "loaded"
    assert store["detail"].startswith("fraud_detection_v2: data current to ")


def test_readiness_is_503_before_the_lifespan(settings_for: object) -> None:
    app = create_app(settings_for())  # type: ignore[operator]
    client = TestClient(app)  # not entered: the lifespan has not run
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_model_card(client: TestClient, tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    card = client.get("/v1/model").json()
    assert card["version"] == bundle.version
    assert card["decision_source"] == "model"
    assert card["features"] == list(bundle.features) and len(card["features"]) == 43
    assert card["thresholds"] == bundle.tiers.to_dict()
    assert set(card["metrics"]) == {"ae", "classifier", "ensemble"}
    assert card["metadata"]["labels"] == "clean"
    assert card["problem"] is None


def test_metrics_count_requests_scores_and_decisions(
    client: TestClient, recent: pd.DataFrame
) -> None:
    bodies = [as_request(row) for row in recent.head(10).itertuples()]
    client.post("/v1/predict/batch", json={"transactions": bodies})
    client.post("/v1/predict", json=bodies[0])
    client.post("/v1/predict", content=b"{", headers={"content-type": "application/json"})
    text = client.get("/metrics").text
    assert 'fraud_http_requests_total{method="POST",route="/v1/predict",status="200"} 1.0' in text
    assert 'fraud_http_requests_total{method="POST",route="/v1/predict",status="400"} 1.0' in text
    assert 'route="/v1/predict/batch",status="200"' in text
    assert 'fraud_score_probability_count{source="model"} 11.0' in text
    decided = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fraud_decisions_total{")
    )
    assert decided == 11
    assert "fraud_http_request_duration_seconds_bucket" in text
    assert "fraud_model_loaded 1.0" in text


def test_openapi_documents_every_error(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/predict", "/v1/predict/batch", "/v1/feedback"):
        assert {"200", "400", "401", "413", "415", "422"} <= set(paths[route]["post"]["responses"])
    assert "409" in paths["/v1/feedback"]["post"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]
