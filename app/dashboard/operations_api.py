"""The dashboard's fraud-operations data: the rule set and its dry-run, the review queue,
the challenger in shadow (``/dashboard/api/...``, session required).

Each route hands over to the ``/v1`` route it mirrors (``app.api.routes.rules``,
``review``, ``shadow``), so the dashboard runs the very same service calls
(``run_dry_run``, ``record_outcome``, the queue's ``claim``/``release``,
``shadow_summary`` through the runtime's record desk), the same checks and the same
metrics; the signed-in key id (set by the session dependency as ``request.state.api_key``)
is the analyst.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app.api.deps import Runtime, RuntimeDep
from app.api.json_body import StrictJSONRoute
from app.api.routes import review as review_routes
from app.api.routes import rules as rule_routes
from app.api.routes import shadow as shadow_routes
from app.api.routes.review import TransactionId
from app.dashboard.session import SessionDep
from app.schemas.operations import DryRunIn, OutcomeIn, RuleSetOut

router = APIRouter(prefix="/dashboard/api", include_in_schema=False, route_class=StrictJSONRoute)
NO_STORE = {"Cache-Control": "no-store"}
QueueStatus = Literal["open", "claimed", "resolved", "all"]


def _json(payload: BaseModel | dict[str, Any]) -> Response:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return Response(orjson.dumps(data), media_type="application/json", headers=NO_STORE)


async def rule_set(runtime: Runtime) -> RuleSetOut:
    """The rule set in force, as ``GET /v1/rules`` reports it."""
    return await rule_routes.rules(runtime)


async def shadow_view(runtime: Runtime, hours: float = 24.0) -> dict[str, Any]:
    """The challenger, this pod's counters and the recorded comparison (``GET /v1/shadow``)."""
    out = await shadow_routes.shadow(runtime, hours)
    view: dict[str, Any] = out.model_dump(mode="json")
    return view


@router.get("/rules")
async def rules(runtime: RuntimeDep, _: SessionDep) -> Response:
    """The rule set in force and its source text (the dry-run form starts from it)."""
    active = runtime.rulebook.active
    out = (await rule_set(runtime)).model_dump(mode="json")
    return _json({**out, "source_text": active.source_text if active else ""})


@router.post("/rules/dry-run")
async def dry_run(body: DryRunIn, runtime: RuntimeDep, _: SessionDep) -> Response:
    """A candidate rule set over recorded decisions, beside the set in force."""
    return _json(await rule_routes.dry_run(body, runtime))


@router.get("/review/queue")
async def queue(
    runtime: RuntimeDep,
    _: SessionDep,
    status_: Annotated[QueueStatus, Query(alias="status")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Queue entries (oldest first) and the queue's counts."""
    return _json(await review_routes.queue(runtime, status_, limit, offset))


@router.post("/review/{transaction_id}/claim")
async def claim(
    transaction_id: TransactionId, request: Request, runtime: RuntimeDep, _: SessionDep
) -> Response:
    """Claim an entry as the signed-in key."""
    return _json(await review_routes.claim_entry(transaction_id, request, runtime))


@router.post("/review/{transaction_id}/release")
async def release(
    transaction_id: TransactionId, request: Request, runtime: RuntimeDep, _: SessionDep
) -> Response:
    """Give a claimed entry back."""
    return _json(await review_routes.release_entry(transaction_id, request, runtime))


@router.post("/review/{transaction_id}/outcome")
async def outcome(
    transaction_id: TransactionId,
    body: OutcomeIn,
    request: Request,
    runtime: RuntimeDep,
    _: SessionDep,
) -> Response:
    """Record the signed-in analyst's finding (a label unless ``unsure``)."""
    return _json(await review_routes.outcome(transaction_id, body, request, runtime))


@router.get("/shadow")
async def shadow(
    runtime: RuntimeDep, _: SessionDep, hours: Annotated[float, Query(gt=0, le=24 * 90)] = 24.0
) -> Response:
    """The challenger in shadow, as ``GET /v1/shadow``."""
    return _json(await shadow_view(runtime, hours))
