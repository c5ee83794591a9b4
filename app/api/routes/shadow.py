"""The challenger in shadow: what is loaded, how it compares live and on record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep, only_query
from app.api.errors import ERROR_RESPONSES, RECORD_DOWN, record_unavailable
from app.schemas.operations import ShadowOut
from system_of_record.shadow import shadow_summary
from system_of_record.store import RecordUnavailable

router = APIRouter(tags=["shadow"], responses={**ERROR_RESPONSES, **RECORD_DOWN})


@router.get(
    "/v1/shadow",
    response_model=ShadowOut,
    summary="The challenger in shadow",
    dependencies=[Depends(only_query("hours"))],
)
async def shadow(
    runtime: RuntimeDep, hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0
) -> ShadowOut:
    """The challenger (``CHALLENGER_URI``) and why it is not scoring, if it is not; this
    pod's counters since start (scored, dropped by reason, decision agreement); and, from
    the system of record over the last ``hours``, each challenger version beside the
    champion's decisions: agreement, alert rates, and precision/recall of the alerts on
    the rows whose label has arrived. Promotion stays the gate's decision
    (docs/fraud-operations.md)."""
    loaded = runtime.challenger
    challenger: dict[str, Any] = {
        "uri": runtime.settings.challenger_uri,
        "loaded": loaded is not None and loaded.bundle is not None,
        "version": loaded.bundle.version if loaded and loaded.bundle else None,
        "problem": loaded.problem if loaded else None,
    }
    live: dict[str, Any] = dict(runtime.shadow.stats()) if runtime.shadow is not None else {}
    since = datetime.now(UTC) - timedelta(hours=hours)
    try:
        recorded = await run_in_threadpool(
            runtime.desk.run, lambda store: shadow_summary(store, since)
        )
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc
    return ShadowOut(challenger=challenger, live=live, recorded=recorded)
