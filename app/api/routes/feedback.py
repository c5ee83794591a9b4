"""Confirmed labels, appended durably to the label log for retraining."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.api.json_body import StrictJSONRoute
from app.schemas import FeedbackIn, FeedbackOut

log = logging.getLogger(__name__)

router = APIRouter(tags=["feedback"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


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
    try:
        outcome = await run_in_threadpool(
            runtime.labels.record, label.transaction_id, label.is_fraud, label.source
        )
    except sqlite3.Error as exc:  # not on disk: say so, the caller retries
        log.error("label log write failed", extra={"fields": {"error": repr(exc)}})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the label could not be recorded durably; retry",
            headers={"Retry-After": "1"},
        ) from exc
    runtime.metrics.feedback.labels(outcome).inc()
    if outcome == "conflict":
        response.status_code = status.HTTP_409_CONFLICT
    request.state.log = {"transaction_id": label.transaction_id, "feedback": outcome}
    return FeedbackOut(transaction_id=label.transaction_id, is_fraud=label.is_fraud, status=outcome)
