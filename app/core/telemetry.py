"""OpenTelemetry tracing for one app: provider, sampler, exporter, FastAPI instrumentation.

Each app gets its own ``TracerProvider`` (not the global one), so tests can attach an
in-memory exporter. Spans are exported by a ``BatchSpanProcessor`` on a background
thread with a bounded queue: an unreachable collector drops spans and never delays a
response. The OTLP/HTTP exporter reads ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers,
timeout) itself, and the processor ``OTEL_BSP_*``.

The SERVER span of a request is opened by ``opentelemetry-instrumentation-fastapi``,
configured for a hot path: no internal ``receive``/``send`` spans, probes and scrapes
not traced, no OpenTelemetry metrics (the service exports its own to Prometheus), and a
parent-based trace-id-ratio sampler (a caller's ``traceparent`` decision is followed;
new traces are kept at the configured ratio). The stage spans of the scoring path are
its children; a group of coalesced requests gets a span of its own, linked to each
request's span (:func:`group_span_factory`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from fastapi import FastAPI
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Tracer, format_trace_id, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp

from app import __version__
from app.core.trace_headers import TraceHeaderGuard

Span = Callable[[str], AbstractContextManager[Any]]
GroupSpan = Callable[[Sequence[Context]], AbstractContextManager[Any]]


class LinkedOrRatio(Sampler):
    """A root span is kept when one of its links is (a coalesced group whose requests were
    traced keeps its stage spans), else at ``ratio`` of trace ids."""

    def __init__(self, ratio: float) -> None:
        self.ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if links and any(link.context.trace_flags.sampled for link in links):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self.ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"LinkedOrRatio{{{self.ratio.get_description()}}}"


def sampler(ratio: float) -> Sampler:
    """``parentbased_traceidratio``, with linked roots following their links."""
    return ParentBased(LinkedOrRatio(ratio))


def tracer_provider(
    service_name: str,
    exporter: str,
    ratio: float = 1.0,
    processor: SpanProcessor | None = None,
) -> TracerProvider:
    """A provider sampling ``ratio`` of new traces, exporting to ``exporter`` (none,
    console, otlp), plus ``processor``."""
    provider = TracerProvider(
        sampler=sampler(ratio),
        resource=Resource.create({SERVICE_NAME: service_name, "service.version": __version__}),
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


def instrument(app: FastAPI, provider: TracerProvider, excluded_urls: str) -> None:
    """The SERVER span of every request whose URL matches none of ``excluded_urls``
    (comma-separated regular expressions, searched in the full URL)."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        excluded_urls=excluded_urls,
        exclude_spans=["receive", "send"],
    )
    # Outside the instrumented stack: headers it would fail to decode (app/core/trace_headers.py).
    instrumented = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return TraceHeaderGuard(instrumented())

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


def span_factory(tracer: Tracer) -> Span:
    """``span(name)`` opens a child span of the current request, or nothing when that
    request's span is not being recorded (the 90 % a 10 % sampler drops): its children
    would not be recorded either (the sampler follows the parent), and creating them cost
    ~10 us each, six per scored transaction. Without a current span, a root span opens."""

    def span(name: str) -> AbstractContextManager[Any]:
        current = get_current_span()
        if current.get_span_context().is_valid and not current.is_recording():
            return nullcontext()
        return tracer.start_as_current_span(name)

    return span


def group_span_factory(tracer: Tracer) -> GroupSpan:
    """``group(contexts)`` opens the root span of a coalesced group, linked to the span of
    each request in it, and links each request's span back to it; the stage spans opened
    inside are its children."""

    @contextmanager
    def group(contexts: Sequence[Context]) -> Iterator[Any]:
        requests = [get_current_span(c) for c in contexts]
        links = [Link(r.get_span_context()) for r in requests if r.get_span_context().is_valid]
        with tracer.start_as_current_span(
            "coalesced_group",
            context=Context(),  # a trace of its own, not the first request's
            links=links,
            attributes={"scoring.coalesced": len(contexts)},
        ) as span:
            if span.is_recording():
                for request in requests:
                    request.add_link(span.get_span_context())
            yield span

    return group


def current_trace_id() -> str | None:
    """Hex trace id of the active span (sampled or not), if there is one."""
    context = get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None
