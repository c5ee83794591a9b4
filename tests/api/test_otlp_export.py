"""Traces leave the process: the real ``python -m app``, configured by the standard
``OTEL_*`` variables, exports one scored request's spans over OTLP/HTTP (protobuf) to a
receiver on 127.0.0.1, and the access log line names the same trace."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.reliability.processes import free_port, serve
from tests.serving import as_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGES = {"feature_lookup", "autoencoder", "classifier", "calibration", "explanation", "rule_set"}


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: every POST to /v1/traces, decoded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """(resource attributes, span) of every span received so far."""
        return [
            (_attributes(resource.resource.attributes), span)
            for request in list(self.requests)
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.paths.append(self.path)
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


def _attributes(pairs: Any) -> dict[str, Any]:
    def value(kv: KeyValue) -> Any:
        return getattr(kv.value, kv.value.WhichOneof("value"))

    return {kv.key: value(kv) for kv in pairs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_request_s_spans_reach_an_otlp_http_receiver(
    receiver: Receiver,
    tiny_bundle: Path,
    feast_repo: Path,
    recent: pd.DataFrame,
    tmp_path: Path,
) -> None:
    port, log = free_port(), tmp_path / "server.log"
    server = serve(
        port,
        tiny_bundle,
        feast_repo,
        tmp_path,
        log,
        LOG_LEVEL="INFO",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_SERVICE_NAME="fraud-scoring-under-test",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_address[1]}",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="1",
        OTEL_BSP_SCHEDULE_DELAY="50",  # milliseconds: export at once
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "POST",
            "/v1/predict",
            json.dumps(as_request(recent.iloc[0])),
            {"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        trace_id = response.getheader("x-trace-id")
        assert trace_id is not None and len(trace_id) == 32
        deadline, traced = time.monotonic() + 15, []
        while time.monotonic() < deadline:
            traced = [(r, s) for r, s in receiver.spans() if s.trace_id.hex() == trace_id]
            if len(traced) > len(STAGES):
                break
            time.sleep(0.05)
    finally:
        server.stop()

    assert set(receiver.paths) == {"/v1/traces"}
    assert {r["service.name"] for r, _ in traced} == {"fraud-scoring-under-test"}
    (server_span,) = [s for _, s in traced if s.kind == Span.SPAN_KIND_SERVER]
    assert server_span.name == "POST /v1/predict"
    assert not server_span.parent_span_id  # a new trace: no traceparent was sent
    attributes = _attributes(server_span.attributes)
    assert attributes["http.route"] == "/v1/predict"
    assert attributes["http.method"] == "POST"
    assert attributes["http.status_code"] == 200
    stages = {s.name: s for _, s in traced if s.kind == Span.SPAN_KIND_INTERNAL}
    assert set(stages) == STAGES  # and no internal receive/send spans
    for stage in stages.values():
        assert stage.parent_span_id == server_span.span_id
        assert server_span.start_time_unix_nano <= stage.start_time_unix_nano
        assert stage.end_time_unix_nano <= server_span.end_time_unix_nano
    assert stages["feature_lookup"].end_time_unix_nano <= stages["autoencoder"].start_time_unix_nano
    assert not any(s.trace_id.hex() != trace_id for _, s in receiver.spans())  # /readyz: none

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (access,) = [
        line for line in lines if line["logger"] == "app.access" and line["route"] == "/v1/predict"
    ]
    assert access["trace_id"] == trace_id and access["status"] == 200
