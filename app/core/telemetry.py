"""OpenTelemetry tracing for one app: provider, exporter, the server span of a request.

Each app gets its own ``TracerProvider`` (not the global one), so tests can attach an
in-memory exporter. Spans are exported by a ``BatchSpanProcessor`` on a background
thread with a bounded queue: an unreachable collector drops spans and never delays a
response. The OTLP exporter reads ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout)
itself; ``OTEL_TRACES_SAMPLER`` works as usual. Incoming ``traceparent`` headers are
honoured, so a caller's trace continues through the service.

The server span is opened by :class:`ServerSpans` from the service's own ASGI middleware,
with the HTTP semantic-convention attributes (method, route, path, status). The
``opentelemetry-instrumentation-fastapi`` middleware does the same but matched every
request against the route table again and cost about a third of the CPU of a scored
request; this costs a few percent.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import (
    Span as OtelSpan,
)
from opentelemetry.trace import (
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    format_trace_id,
    get_current_span,
    set_span_in_context,
)

from app import __version__

Span = Callable[[str], AbstractContextManager[Any]]


def tracer_provider(
    service_name: str, exporter: str, processor: SpanProcessor | None = None
) -> TracerProvider:
    """A provider exporting to ``exporter`` (none, console, otlp), plus ``processor``."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name, "service.version": __version__})
    )
    span_exporter: SpanExporter | None = None
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter, max_queue_size=4096))
    if processor is not None:
        provider.add_span_processor(processor)
    return provider


class ServerSpans:
    """Opens and closes the SERVER span of each traced request (pure ASGI, no routing)."""

    def __init__(
        self,
        tracer: Tracer,
        excluded_paths: frozenset[str],
        excluded_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.tracer = tracer
        self.excluded_paths = excluded_paths
        self.excluded_prefixes = excluded_prefixes

    def start(
        self, method: str, path: str, headers: dict[bytes, bytes]
    ) -> tuple[OtelSpan, object] | None:
        """The span and its context token, or None for an excluded path."""
        if path in self.excluded_paths or path.startswith(self.excluded_prefixes):
            return None
        carrier = {
            name.decode("latin-1"): headers[name].decode("latin-1")
            for name in (b"traceparent", b"tracestate")
            if name in headers
        }
        span = self.tracer.start_span(
            method,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        return span, otel_context.attach(set_span_in_context(span))

    @staticmethod
    def end(opened: tuple[OtelSpan, object], method: str, route: str | None, status: int) -> None:
        span, token = opened
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


def span_factory(tracer: Tracer) -> Span:
    """``span(name)`` opens a child span of the current request."""

    def span(name: str) -> AbstractContextManager[Any]:
        return tracer.start_as_current_span(name)

    return span


def current_trace_id() -> str | None:
    """Hex trace id of the active span, if it is being recorded."""
    context = get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None
