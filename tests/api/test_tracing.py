"""OpenTelemetry: the FastAPI instrumentation's server span per request with child spans
per stage, the caller's W3C ``traceparent`` continued, a parent-based ratio sampler,
excluded URLs, the trace id in the access log, and coalesced groups linked to each
request's trace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, format_trace_id

from app.core.config import Settings
from app.core.telemetry import sampler
from app.main import create_app
from tests.serving import as_request

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
STAGES = ("feature_lookup", "autoencoder", "classifier", "calibration", "explanation", "rule_set")


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
    assert server.kind is SpanKind.SERVER
    for stage in STAGES:
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


@pytest.mark.parametrize("header", [b"traceparent", b"tracestate", b"baggage", b"user-agent"])
def test_a_header_the_instrumentation_cannot_decode_is_still_answered(
    client: TestClient, spans: InMemorySpanExporter, recent: pd.DataFrame, header: bytes
) -> None:
    """Raw bytes that are neither UTF-8 nor a valid escape (the fuzz tests' ``\\xa1\\\\``,
    which TestClient cannot send: it re-encodes header values): the instrumentation would
    raise before any handler (a 500); the request is answered in a new trace."""
    body = orjson.dumps(as_request(recent.iloc[0]))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"), (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), (header, b"\xa1\\"),
        ],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    spans.clear()
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200
    trace_id = dict(start["headers"])[b"x-trace-id"].decode()
    assert int(trace_id, 16) != 0
    assert "POST /v1/predict" in {s.name for s in spans.get_finished_spans()}


def test_probes_and_scrapes_are_not_traced(client: TestClient, spans: InMemorySpanExporter) -> None:
    spans.clear()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code in (200, 503)
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


def test_the_server_span_is_the_instrumentation_s_without_receive_and_send_spans(
    client: TestClient, spans: InMemorySpanExporter, recent: pd.DataFrame
) -> None:
    spans.clear()
    response = client.post("/v1/predict", json=as_request(recent.iloc[0]))
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/predict"
    assert server.instrumentation_scope is not None
    assert server.instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
    attributes = dict(server.attributes or {})
    assert attributes["http.route"] == "/v1/predict"
    assert attributes["http.method"] == "POST"
    assert attributes["http.status_code"] == response.status_code == 200
    assert format_trace_id(server.context.trace_id) == response.headers["x-trace-id"]
    names = {s.name for s in finished}
    assert not any(name.endswith((" receive", " send")) for name in names), names
    assert names == {"POST /v1/predict", *STAGES}


def test_the_access_log_line_carries_the_trace_id(client: TestClient, recent: pd.DataFrame) -> None:
    lines: list[dict[str, object]] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(getattr(record, "fields", {}))  # type: ignore[method-assign]
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)  # the test app logs at WARNING
    try:
        response = client.post("/v1/predict", json=as_request(recent.iloc[0]))
        client.get("/healthz")
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    predict, health = lines
    assert predict["route"] == "/v1/predict"
    assert predict["trace_id"] == response.headers["x-trace-id"]
    assert health["route"] == "/healthz" and health["trace_id"] is None


@pytest.mark.parametrize(
    ("ratio", "flags", "exported"),
    [(0.0, None, False), (0.0, "01", True), (1.0, "00", False), (1.0, None, True)],
)
def test_the_sampler_keeps_the_ratio_of_new_traces_and_follows_the_caller(
    client_for: Callable[..., TestClient],
    spans: InMemorySpanExporter,
    recent: pd.DataFrame,
    ratio: float,
    flags: str | None,
    exported: bool,
) -> None:
    client = client_for(otel_traces_sampler_arg=ratio)
    spans.clear()
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-{flags}"} if flags else {}
    response = client.post("/v1/predict", json=as_request(recent.iloc[0]), headers=headers)
    assert response.status_code == 200
    assert len(response.headers["x-trace-id"]) == 32  # logs still correlate, sampled or not
    assert bool(spans.get_finished_spans()) is exported


def test_a_ratio_keeps_about_that_share_of_new_traces(
    client_for: Callable[..., TestClient], spans: InMemorySpanExporter, recent: pd.DataFrame
) -> None:
    client = client_for(otel_traces_sampler_arg=0.25)
    spans.clear()
    for _ in range(200):
        client.get("/v1/model")
    kept = len([s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER])
    assert 25 <= kept <= 80  # 50 expected; binomial sd ~6


def test_excluded_urls_come_from_the_setting(
    client_for: Callable[..., TestClient], spans: InMemorySpanExporter
) -> None:
    client = client_for(otel_excluded_urls=r"/v1/model$")
    spans.clear()
    client.get("/v1/model")
    client.get("/healthz")  # no longer excluded: the setting replaced the default list
    assert [s.name for s in spans.get_finished_spans()] == ["GET /healthz"]


def test_a_coalesced_group_has_its_own_trace_linked_to_each_request(
    settings_for: Callable[..., Settings], spans: InMemorySpanExporter, recent: pd.DataFrame
) -> None:
    app = create_app(settings_for(), span_processor=SimpleSpanProcessor(spans))
    bodies = [as_request(row) for row in recent.head(12).itertuples()]

    async def post_together() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await asyncio.gather(*(http.post("/v1/predict", json=b) for b in bodies))

    responses = asyncio.run(post_together())
    assert [r.status_code for r in responses] == [200] * 12
    finished = spans.get_finished_spans()
    servers = {s.context.trace_id: s for s in finished if s.kind is SpanKind.SERVER}
    assert {format_trace_id(t) for t in servers} == {r.headers["x-trace-id"] for r in responses}
    groups = [s for s in finished if s.name == "coalesced_group"]
    assert groups, "12 concurrent requests were never coalesced"
    grouped = 0
    for group in groups:
        size = dict(group.attributes or {})["scoring.coalesced"]
        assert isinstance(size, int) and size > 1
        grouped += size
        assert group.parent is None and group.context.trace_id not in servers
        members = {link.context.trace_id for link in group.links}
        assert len(members) == size and members <= servers.keys()
        for trace_id in members:  # each request's span links back to the group
            back = [link.context.span_id for link in servers[trace_id].links]
            assert back == [group.context.span_id]
        children = {
            s.name for s in finished if s.parent and s.parent.span_id == group.context.span_id
        }
        assert children == set(STAGES)
    alone = [t for t, s in servers.items() if not s.links]
    for trace_id in alone:  # a lone request's stages stay in its own trace
        stages = {s.name for s in finished if s.context.trace_id == trace_id} - {
            servers[trace_id].name
        }
        assert stages == set(STAGES)
    assert grouped + len(alone) == 12


def test_a_linked_root_follows_its_links_whatever_the_ratio() -> None:
    """A coalesced group's span is kept when one of its requests is traced (its stage
    spans would otherwise be missing from a sampled request's picture), else at the ratio."""
    sampled = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    unsampled = SpanContext(3, 4, is_remote=False, trace_flags=TraceFlags(0))
    never, always = sampler(0.0), sampler(1.0)
    trace_id = 0xFFFF_FFFF_FFFF_FFFF  # above any ratio's bound below 1
    assert never.should_sample(
        None, trace_id, "g", links=[Link(unsampled), Link(sampled)]
    ).decision.is_sampled()
    assert not never.should_sample(
        None, trace_id, "g", links=[Link(unsampled)]
    ).decision.is_sampled()
    assert not never.should_sample(None, trace_id, "g").decision.is_sampled()
    assert always.should_sample(None, trace_id, "g").decision.is_sampled()


def test_stage_spans_are_not_made_under_a_request_the_sampler_dropped() -> None:
    """Children of an unrecorded span would be dropped too (the sampler follows the
    parent): none is created; under a recorded span, and with no span at all, one is."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NonRecordingSpan, use_span

    from app.core.telemetry import span_factory

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stage = span_factory(provider.get_tracer("test"))
    dropped = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)))
    with use_span(dropped), stage("autoencoder") as made:
        assert made is None  # a null context, not a span
    with provider.get_tracer("test").start_as_current_span("request"), stage("classifier"):
        pass
    with stage("feature_lookup"):  # no request span: a root of its own
        pass
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "classifier",
        "feature_lookup",
        "request",
    ]
