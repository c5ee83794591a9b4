"""Confirmed labels, appended durably to the label log for retraining."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.schemas import FeedbackIn, FeedbackOut

router = APIRouter(tags=["feedback"], responses=ERROR_RESPONSES)


@router.post(
    "/v1/feedback",
    response_model=FeedbackOut,
    summary="Record a confirmed label",
    responses={409: {"model": FeedbackOut, "description": "A different label is on record"}},
)
async def feedback(
    label: FeedbackIn, request: Request, response: Response, runtime: RuntimeDep
) -> FeedbackOut:
    """Idempotent per transaction id: the same label again is a no-op (200, duplicate);
    a different label is kept for review and not applied (409, conflict). The label is
    on disk before the answer."""
    outcome = await run_in_threadpool(
        runtime.labels.record, label.transaction_id, label.is_fraud, label.source
    )
    runtime.metrics.feedback.labels(outcome).inc()
    if outcome == "conflict":
        response.status_code = status.HTTP_409_CONFLICT
    request.state.log = {"transaction_id": label.transaction_id, "feedback": outcome}
    return FeedbackOut(transaction_id=label.transaction_id, is_fraud=label.is_fraud, status=outcome)
