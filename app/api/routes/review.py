"""The review queue: transactions decided ``review`` (and a control sample of others),
claimed by one analyst at a time, whose outcomes become labels.

Analysts sign in with the API keys; the key's id is who claimed and who decided. The
queue lives in the system of record, so every pod serves the same queue and a claim is
one conditional update there: of two analysts claiming at once, one wins.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import Runtime, RuntimeDep, only_query
from app.api.errors import ERROR_RESPONSES, RECORD_DOWN, record_unavailable
from app.api.json_body import StrictJSONRoute
from app.schemas import ErrorOut
from app.schemas.operations import (
    ClaimOut,
    OutcomeIn,
    OutcomeOut,
    ReviewItemOut,
    ReviewQueueOut,
)
from app.services.review import record_outcome
from system_of_record.review_queue import (
    ReviewItem,
    claim,
    queue_items,
    queue_stats,
    release,
    review_item,
)
from system_of_record.store import RecordStore, RecordUnavailable

log = logging.getLogger(__name__)

NOT_QUEUED: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "The transaction is not in the review queue"}
}
router = APIRouter(
    tags=["review"],
    responses={**ERROR_RESPONSES, **RECORD_DOWN, **NOT_QUEUED},
    route_class=StrictJSONRoute,
)
TransactionId = Annotated[str, Path(min_length=1, max_length=64)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Claimed by another analyst, not claimed by you, or resolved"}
}


def item_out(item: ReviewItem) -> ReviewItemOut:
    """The API's view of a queue entry (reason codes and rules as lists)."""
    fields: dict[str, Any] = {**item.__dict__}
    fields["reasons"] = [c for c in (item.reasons or "").split(",") if c]
    fields["rules"] = [r for r in (item.rules or "").split(",") if r]
    return ReviewItemOut(**fields)


async def _desk(runtime: Runtime, work: Any) -> Any:
    try:
        return await run_in_threadpool(runtime.desk.run, work)
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc


@router.get(
    "/v1/review/queue",
    response_model=ReviewQueueOut,
    summary="The review queue",
    dependencies=[Depends(only_query("status", "limit", "offset"))],
)
async def queue(
    runtime: RuntimeDep,
    status_: Annotated[
        Literal["open", "claimed", "resolved", "all"], Query(alias="status")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReviewQueueOut:
    """Entries oldest first, with the decision each is about, and the queue's counts."""
    wanted = None if status_ == "all" else status_

    def work(store: RecordStore) -> tuple[list[ReviewItem], dict[str, Any]]:
        return queue_items(store, wanted, limit, offset), queue_stats(store, datetime.now(UTC))

    items, counts = await _desk(runtime, work)
    return ReviewQueueOut(items=[item_out(i) for i in items], counts=counts)


@router.get("/v1/review/{transaction_id}", response_model=ReviewItemOut, summary="One entry")
async def entry(transaction_id: TransactionId, runtime: RuntimeDep) -> ReviewItemOut:
    item = await _desk(runtime, lambda store: review_item(store, transaction_id))
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not in the review queue")
    return item_out(item)


@router.post(
    "/v1/review/{transaction_id}/claim",
    response_model=ClaimOut,
    responses=CONFLICT,
    summary="Claim an entry",
)
async def claim_entry(
    transaction_id: TransactionId, request: Request, runtime: RuntimeDep
) -> ClaimOut:
    """Take an entry for REVIEW_CLAIM_LEASE_SECONDS (claiming again renews it). 409 when
    another analyst holds an unexpired claim, or it is resolved."""
    who: str = request.state.api_key
    lease = runtime.settings.review_claim_lease_seconds
    now = datetime.now(UTC)
    outcome = await _desk(runtime, lambda store: claim(store, transaction_id, who, lease, now))
    if outcome == "missing":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not in the review queue")
    if outcome != "claimed":
        why = "another analyst holds it" if outcome == "taken" else "it is resolved"
        raise HTTPException(status.HTTP_409_CONFLICT, f"not claimed: {why}")
    runtime.metrics.review_actions.labels("claim").inc()
    return ClaimOut(transaction_id=transaction_id, status="claimed", lease_seconds=lease)


@router.post(
    "/v1/review/{transaction_id}/release",
    response_model=ClaimOut,
    responses=CONFLICT,
    summary="Give an entry back",
)
async def release_entry(
    transaction_id: TransactionId, request: Request, runtime: RuntimeDep
) -> ClaimOut:
    """Put a claimed entry back in the queue (only its claimer can)."""
    who: str = request.state.api_key
    outcome = await _desk(runtime, lambda store: release(store, transaction_id, who))
    if outcome == "missing":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not in the review queue")
    if outcome != "released":
        raise HTTPException(status.HTTP_409_CONFLICT, "you do not hold this entry")
    runtime.metrics.review_actions.labels("release").inc()
    lease = runtime.settings.review_claim_lease_seconds
    return ClaimOut(transaction_id=transaction_id, status="released", lease_seconds=lease)


@router.post(
    "/v1/review/{transaction_id}/outcome",
    response_model=OutcomeOut,
    responses=CONFLICT,
    summary="Record an analyst's outcome",
)
async def outcome(
    transaction_id: TransactionId, body: OutcomeIn, request: Request, runtime: RuntimeDep
) -> OutcomeOut:
    """The claimer's finding: ``fraud`` or ``legitimate`` become a label through the
    feedback path (the label log, then the system of record and retraining); ``unsure``
    resolves the entry without one. Who decided is recorded with the entry."""
    who: str = request.state.api_key
    try:
        result = await run_in_threadpool(
            record_outcome,
            runtime.desk,
            runtime.labels,
            transaction_id,
            who,
            body.outcome,
            body.note,
        )
    except RecordUnavailable as exc:
        raise record_unavailable(exc) from exc
    except sqlite3.Error as exc:  # the label log: not on disk, the analyst retries
        log.error("label log write failed", extra={"fields": {"error": repr(exc)}})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the label could not be recorded durably; retry",
            headers={"Retry-After": "1"},
        ) from exc
    if result.status == "missing":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not in the review queue")
    if result.status != "resolved":
        why = {
            "already": "it is already resolved",
            "not_claimed": "claim it first",
            "not_yours": "another analyst holds it",
        }[result.status]
        raise HTTPException(status.HTTP_409_CONFLICT, f"no outcome recorded: {why}")
    runtime.metrics.review_outcomes.labels(body.outcome).inc()
    if result.label is not None:
        runtime.metrics.feedback.labels(result.label).inc()
    request.state.log = {"transaction_id": transaction_id, "review": body.outcome, "by": who}
    return OutcomeOut(
        transaction_id=transaction_id, outcome=body.outcome, status="resolved", label=result.label
    )
