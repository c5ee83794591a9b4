"""OpenTelemetry tracing for one app: provider, exporter, FastAPI instrumentation.

Each app gets its own ``TracerProvider`` (not the global one), so tests can attach an
in-memory exporter. Spans are exported by a ``BatchSpanProcessor`` on a background
thread with a bounded queue: an unreachable collector drops spans and never delays a
response. The OTLP exporter reads ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, timeout)
itself; ``OTEL_TRACES_SAMPLER`` works as usual. Incoming ``traceparent`` headers are
honoured, so a caller's trace continues through the service.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer, format_trace_id, get_current_span

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


def instrument(app: FastAPI, provider: TracerProvider) -> Tracer:
    """Trace every request of ``app``; returns the tracer for the service's own spans."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
    return provider.get_tracer("app.scoring")


def span_factory(tracer: Tracer) -> Span:
    """``span(name)`` opens a child span of the current request."""

    def span(name: str) -> AbstractContextManager[Any]:
        return tracer.start_as_current_span(name)

    return span


def current_trace_id() -> str | None:
    """Hex trace id of the active span, if it is being recorded."""
    context = get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None
