"""What the online store holds: the load record and the readiness check's view of it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from app.api.deps import RuntimeDep
from app.api.routes.health import feature_store_component
from app.schemas import ErrorOut, FeatureStatusOut, LoadRecordOut, ViewLoadOut

router = APIRouter(prefix="/v1/features", tags=["features"])


@router.get(
    "/status",
    response_model=FeatureStatusOut,
    summary="Online store status and load record",
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
async def feature_status(runtime: RuntimeDep) -> FeatureStatusOut:
    """The FeatureService, the online store's type and status, and the record of its last
    load: up to when the data is current (``end``) and, per view, how many entities were
    loaded and one of them (``canary``). A smoke test scores the canary customer at a
    canary terminal just before ``end`` and expects no ``degraded`` entry."""
    health = runtime.feature_health
    state = health.state if health is not None else None
    component, ready = feature_store_component(runtime)
    record = state.record if state is not None else None
    return FeatureStatusOut(
        feature_service=runtime.settings.feature_service,
        online_store=runtime.features.store_type if runtime.features is not None else None,
        status="unavailable" if component.status == "fallback" else component.status,
        detail=component.detail,
        ready=ready,
        checked_at=datetime.fromtimestamp(state.last.at, UTC) if state is not None else None,
        last_check=state.last.status if state is not None else None,
        record=None
        if record is None
        else LoadRecordOut(
            feature_service=record.feature_service,
            end=record.end,
            loaded_at=record.loaded_at,
            views={
                name: ViewLoadOut(entities=view.entities, canary=view.canary)
                for name, view in sorted(record.views.items())
            },
        ),
    )
