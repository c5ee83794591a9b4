"""OpenTelemetry: a server span per request with child spans per stage, and the
caller's W3C ``traceparent`` continued."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.serving import as_request

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_stages_are_child_spans_of_the_request(
    client: TestClient, spans: InMemorySpanExporter, recent: pd.DataFrame
) -> None:
    spans.clear()
    response = client.post(
        "/v1/predict",
        json=as_request(recent.iloc[0]),
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 200
    assert response.headers["x-trace-id"] == TRACE_ID
    finished = {span.name: span for span in spans.get_finished_spans()}
    server = finished["POST /v1/predict"]
    assert server.context.trace_id == int(TRACE_ID, 16)
    assert server.parent is not None and server.parent.span_id == int(PARENT_ID, 16)
    for stage in ("feature_lookup", "autoencoder", "classifier", "explanation"):
        assert finished[stage].context.trace_id == int(TRACE_ID, 16)
        assert finished[stage].parent is not None
        assert finished[stage].parent.span_id == server.context.span_id


def test_a_new_trace_without_traceparent(
    client: TestClient, spans: InMemorySpanExporter, recent: pd.DataFrame
) -> None:
    spans.clear()
    response = client.post("/v1/predict", json=as_request(recent.iloc[0]))
    trace_id = response.headers["x-trace-id"]
    assert trace_id != TRACE_ID and int(trace_id, 16) != 0
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {int(trace_id, 16)}


def test_health_probes_are_not_traced(client: TestClient, spans: InMemorySpanExporter) -> None:
    spans.clear()
    client.get("/healthz")
    client.get("/readyz")
    assert spans.get_finished_spans() == ()


def test_an_unreachable_collector_changes_nothing(client_for: object, recent: pd.DataFrame) -> None:
    """OTLP to a closed port: answers stay the same and fast (export is in the background)."""
    import os

    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    try:
        client = client_for(otel_traces_exporter="otlp")  # type: ignore[operator]
        answers = [client.post("/v1/predict", json=as_request(recent.iloc[0])) for _ in range(20)]
    finally:
        del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert all(a.status_code == 200 for a in answers)
    assert max(a.json()["latency_ms"] for a in answers) < 250
