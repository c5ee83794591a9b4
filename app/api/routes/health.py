"""Liveness, readiness and the Prometheus metrics page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import runtime_of
from app.schemas import ComponentOut, HealthOut, ReadyOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, summary="Alive")
async def healthz() -> HealthOut:
    """The process answers; says nothing about the model or the features."""
    return HealthOut(status="alive")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Ready to score",
    responses={503: {"model": ReadyOut, "description": "Starting, stopping, or (strict) degraded"}},
)
async def readyz(request: Request, response: Response) -> ReadyOut:
    """200 once the bundle and the feature store are loaded. With the rules fallback or
    without a feature store it still answers 200 (``degraded``) unless
    ``STRICT_READINESS`` is on; 503 while starting or shutting down."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None or not runtime.accepting:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        down = ComponentOut(status="unavailable", detail="starting or stopping")
        return ReadyOut(status="not_ready", model=down, feature_store=down)
    model = (
        ComponentOut(status="loaded", detail=runtime.model.bundle.version)
        if runtime.model.bundle is not None
        else ComponentOut(status="fallback", detail=f"rules: {runtime.model.problem}")
    )
    features = (
        ComponentOut(status="loaded", detail=runtime.features.service_name)
        if runtime.features is not None
        else ComponentOut(status="unavailable", detail=runtime.feature_problem)
    )
    healthy = model.status == "loaded" and features.status == "loaded"
    if not healthy and runtime.settings.strict_readiness:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return ReadyOut(status="not_ready", model=model, feature_store=features)
    return ReadyOut(status="ready" if healthy else "degraded", model=model, feature_store=features)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latency by route and status, scores, decisions, fallbacks,
    feature misses, velocity pushes."""
    runtime = runtime_of(request)
    tracker = runtime.service.velocity
    if tracker is not None:
        runtime.metrics.velocity_pending.set(tracker.pending_events)
        runtime.metrics.velocity_dropped.set(tracker.stats.dropped)
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")
