"""Liveness, readiness and the Prometheus metrics page (docs/reliability.md, "Health:
what each probe means")."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import Runtime, runtime_of
from app.schemas import ComponentOut, HealthOut, LogComponentOut, ReadyOut, ReadyStatus
from app.schemas.status import ChallengerComponentOut, RecordComponentOut, RulesComponentOut
from app.services.dependency_health import WriteHealth

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    response_model_exclude_none=True,
    summary="Alive",
    responses={503: {"model": HealthOut, "description": "Scoring is stuck: restart"}},
)
async def healthz(request: Request, response: Response) -> HealthOut:
    """200 while the process answers and scoring moves. 503 (``stuck``) once the oldest
    unfinished feature lookup is older than ``SCORING_STUCK_SECONDS`` even after the
    lookup thread was replaced, so the kubelet restarts the container. Says nothing about
    the model or the store's data."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    limit = runtime.settings.scoring_stuck_seconds if runtime is not None else 0.0
    if runtime is None or limit <= 0:
        return HealthOut(status="alive")
    runtime.service.lookups.recover()  # a stuck lookup thread is replaced first, if it can be
    waited = runtime.service.lookups.oldest_seconds()
    if waited > limit:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        detail = f"the oldest feature lookup has waited {waited:.1f} s (limit {limit:g} s)"
        return HealthOut(status="stuck", detail=detail)
    return HealthOut(status="alive")


def feature_store_component(runtime: Runtime) -> tuple[ComponentOut, bool]:
    """The online store's component of ``/readyz``, and whether it allows ready."""
    health = runtime.feature_health
    state = health.state if health is not None else None
    if health is None or state is None:
        return ComponentOut(status="unavailable", detail=runtime.feature_problem), False
    last = state.last
    detail: str | None
    if state.status == "loaded" and state.record is not None:
        detail = f"{health.service_name}: data current to {state.record.end.isoformat()}"
    elif state.status == "unreachable":
        since = "loaded before: scoring without it" if state.ever_loaded else "never reached"
        detail = f"{last.detail} ({since})" if last.status == "unreachable" else since
    else:
        detail = last.detail if last.status == state.status else None
    if last.status != state.status:
        detail = f"{detail}; last check: {last.status}: {last.detail}"
    return ComponentOut(status=state.status, detail=detail), state.ready


def log_component(health: WriteHealth) -> LogComponentOut:
    """A log's component of ``/readyz``: ``writable``, or ``failing`` and why."""
    if health.writable:
        return LogComponentOut(status="writable")
    return LogComponentOut(status="failing", detail=health.detail)


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Ready to score",
    responses={
        503: {
            "model": ReadyOut,
            "description": "Starting, stopping, no usable online store, an audit log that "
            "cannot be written, or (strict) the rules fallback",
        }
    },
)
async def readyz(request: Request, response: Response) -> ReadyOut:
    """200 ``ready`` with the model, a loaded online store and writable logs; 200
    ``degraded`` under the rules fallback, while a store that was loaded does not answer,
    or while the label log fails. 503 while starting or shutting down, when the store
    cannot be opened, holds no data for the FeatureService or was never reached, when the
    audit log's writes fail (no score could be answered), and (``STRICT_READINESS``)
    under the rules fallback. Reads the checks' and writes' outcomes only: no I/O."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None or not runtime.accepting:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        down = ComponentOut(status="unavailable", detail="starting or stopping")
        logs = LogComponentOut(status="unavailable", detail="starting or stopping")
        return ReadyOut(
            status="not_ready", model=down, feature_store=down, audit_log=logs, label_log=logs
        )
    model = (
        ComponentOut(status="loaded", detail=runtime.model.bundle.version)
        if runtime.model.bundle is not None
        else ComponentOut(status="fallback", detail=f"rules: {runtime.model.problem}")
    )
    features, store_ready = feature_store_component(runtime)
    audit = log_component(runtime.audit.health)
    labels = log_component(runtime.labels.health)
    record = record_component(runtime)
    rules = rules_component(runtime)
    model_ok = model.status == "loaded"
    if (
        not store_ready
        or audit.status != "writable"
        or record.status == "spool_full"
        or rules.status == "invalid"
        or (not model_ok and runtime.settings.strict_readiness)
    ):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        verdict: ReadyStatus = "not_ready"
    elif (
        model_ok
        and features.status == "loaded"
        and labels.status == "writable"
        and record.status == "shipping"
        and rules.status == "loaded"
    ):
        verdict = "ready"
    else:
        verdict = "degraded"
    return ReadyOut(
        status=verdict,
        model=model,
        feature_store=features,
        audit_log=audit,
        label_log=labels,
        system_of_record=record,
        rules=rules,
        challenger=challenger_component(runtime),
    )


def rules_component(runtime: Runtime) -> RulesComponentOut:
    """The rule set's component of ``/readyz``."""
    state = runtime.rulebook.state()
    if state.active is None:
        return RulesComponentOut(status="invalid", version=None, detail=state.problem)
    if state.problem:
        return RulesComponentOut(status="refused", version=state.active.label, detail=state.problem)
    return RulesComponentOut(status="loaded", version=state.active.label)


def challenger_component(runtime: Runtime) -> ChallengerComponentOut:
    """The challenger's component of ``/readyz`` (informational)."""
    loaded = runtime.challenger
    if loaded is None:
        return ChallengerComponentOut(status="off")
    if loaded.bundle is None:
        return ChallengerComponentOut(status="unavailable", detail=loaded.problem)
    return ChallengerComponentOut(status="scoring", version=loaded.bundle.version)


def record_component(runtime: Runtime) -> RecordComponentOut:
    """The system of record's component of ``/readyz``, from the shipper's last attempt."""
    spooled = runtime.audit.backlog
    if runtime.audit.spool_full:
        detail = f"{spooled} decisions wait (RECORD_SPOOL_MAX_ROWS reached)"
        return RecordComponentOut(status="spool_full", detail=detail, spooled=spooled)
    state = runtime.record.state
    if state.status == "unavailable":
        return RecordComponentOut(status="unavailable", detail=state.detail, spooled=spooled)
    return RecordComponentOut(status="shipping", spooled=spooled)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latency by route and status, scores, decisions, fallbacks,
    feature misses, velocity pushes, the online store's status and data age, reopened
    files and writable logs."""
    runtime = runtime_of(request)
    tracker = runtime.service.velocity
    if tracker is not None:
        runtime.metrics.velocity_pending.set(tracker.pending_events)
        runtime.metrics.velocity_dropped.set(tracker.stats.dropped)
        runtime.metrics.velocity_clamped.set(tracker.stats.clamped)
    runtime.metrics.lookup_oldest.set(runtime.service.lookups.oldest_seconds())
    for log in (runtime.audit.health, runtime.labels.health):
        runtime.metrics.log_writable.labels(log.name).set(1 if log.writable else 0)
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")
