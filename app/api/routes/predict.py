"""Scoring routes: one transaction, or a batch with one online-feature call.

Answers (:func:`app.schemas.answers.answer`) are encoded straight to JSON bytes with
orjson: the ``response_model`` documents them (and ``tests/api`` validates answers
against it), but FastAPI does not rebuild and re-validate a pydantic object per answer,
which cost more than scoring a transaction.

``latency_ms`` is the server's own time: from when the request's body had been received
(``state["received"]``, set by :mod:`app.api.middleware`), so a client that sends its
body slowly does not count its own slowness; the access log keeps the total.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.api.json_body import StrictJSONRoute
from app.core.logging import pseudonymise
from app.schemas import BatchIn, BatchOut, ErrorOut, ScoreOut, TransactionIn
from app.schemas.answers import answer
from app.services.prediction_log import PredictionRecord, SpoolFull
from app.services.predictor import Prediction

log = logging.getLogger(__name__)

router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)
SCORING_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "Overloaded: this route's admission budget is full, retry after "
        "Retry-After seconds (app.api.admission); or the service is starting, or the "
        "prediction could not be recorded durably",
    }
}


def _elapsed_ms(request: Request) -> float:
    start: float = getattr(request.state, "received", request.state.start)
    return round((time.perf_counter() - start) * 1000, 3)


async def batch_within_limit(request: Request, runtime: RuntimeDep) -> None:
    """413 for a batch over ``MAX_BATCH``, counted on the parsed JSON before any of its
    transactions is validated (as a schema error it would be a 422, and cost a full
    validation of every transaction first)."""
    if not await request.body():
        return  # the schema's 422
    try:
        body = await request.json()  # parsed once: FastAPI's body reader cached it
    except ValueError:
        return  # not JSON after all: left to the body's own 400 or 422
    transactions = body.get("transactions") if isinstance(body, dict) else None
    limit = runtime.settings.max_batch
    if isinstance(transactions, list) and len(transactions) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {limit} transactions per batch"
        )


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def _score(
    runtime: RuntimeDep, request: Request, transactions: Sequence[TransactionIn]
) -> tuple[list[Prediction], str]:
    """Predictions and the model version, recorded in the audit log before returning."""
    predictions = await runtime.service.score(transactions)
    version = runtime.service.predictor.version
    runtime.metrics.observe_predictions(predictions)
    now = time.time()
    request_id: str = request.state.request_id
    feature_service = runtime.settings.feature_service
    records = [
        PredictionRecord(
            t.transaction_id,
            version,
            p.fraud_probability,
            p.risk_level,
            p.decision,
            p.decision_source,
            ",".join(p.degraded),
            request_id,
            now,
            t.customer_id,
            t.terminal_id,
            t.epoch_seconds,
            t.amount,
            t.merchant_category,
            t.channel,
            t.entry_mode,
            t.is_foreign,
            t.distance_from_home_km,
            feature_service,
            p.model_decision or p.decision,
            ",".join(r.code for r in p.reasons),
            p.rule_set,
            ",".join(p.rules),
            p.features,
        )
        for t, p in zip(transactions, predictions, strict=True)
    ]
    try:
        await runtime.audit.append(records)
    except SpoolFull as exc:  # the database has been away too long: take nothing more
        log.error("record spool full", extra={"fields": {"error": str(exc)}})
        runtime.metrics.audit_failures.inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the system of record is unavailable and this pod's spool is full; retry",
            headers={"Retry-After": "5"},
        ) from exc
    except Exception as exc:  # no durable record, no answer: the caller retries
        log.error("audit log write failed", extra={"fields": {"error": repr(exc)}})
        runtime.metrics.audit_failures.inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the prediction could not be recorded durably; retry",
            headers={"Retry-After": "1"},
        ) from exc
    if runtime.metrics.live is not None:  # answered: on the Live page
        runtime.metrics.live.record(transactions, predictions, version)
    return predictions, version


@router.post(
    "/v1/predict",
    response_model=ScoreOut,
    responses=SCORING_RESPONSES,
    summary="Score one transaction",
)
async def predict(transaction: TransactionIn, request: Request, runtime: RuntimeDep) -> Response:
    """Fraud probability, risk level, decision and reason codes for one transaction."""
    (prediction,), version = await _score(runtime, request, [transaction])
    request.state.log = {
        "transaction_id": transaction.transaction_id,
        "customer": pseudonymise(transaction.customer_id, runtime.hash_key),
        "model_version": version,
        "fraud_probability": prediction.fraud_probability,
        "decision": prediction.decision,
        "decision_source": prediction.decision_source,
        "degraded": prediction.degraded,
    }
    return _json(answer(transaction, prediction, version, _elapsed_ms(request)))


@router.post(
    "/v1/predict/batch",
    response_model=BatchOut,
    responses=SCORING_RESPONSES,
    summary="Score up to 1,000",
)
async def predict_batch(
    _: Annotated[None, Depends(batch_within_limit)],
    batch: BatchIn,
    request: Request,
    runtime: RuntimeDep,
) -> Response:
    """Score many transactions with one online-feature lookup; answers keep their order."""
    predictions, version = await _score(runtime, request, batch.transactions)
    ms = _elapsed_ms(request)
    decisions: dict[str, int] = {}
    for p in predictions:
        decisions[p.decision] = decisions.get(p.decision, 0) + 1
    request.state.log = {"batch": len(predictions), "model_version": version, **decisions}
    return _json(
        {
            "results": [
                answer(t, p, version, ms)
                for t, p in zip(batch.transactions, predictions, strict=True)
            ],
            "count": len(predictions),
            "model_version": version,
            "latency_ms": ms,
        }
    )
