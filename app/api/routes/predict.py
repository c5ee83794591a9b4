"""Scoring routes: one transaction, or a batch with one online-feature call.

Answers are encoded straight to JSON bytes with orjson: the ``response_model`` documents
them (and ``tests/api`` validates answers against it), but FastAPI does not rebuild and
re-validate a pydantic object per answer, which cost more than scoring a transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.api.json_body import StrictJSONRoute
from app.core.logging import pseudonymise
from app.schemas import BatchIn, BatchOut, ScoreOut, TransactionIn
from app.services.prediction_log import PredictionRecord
from app.services.predictor import Prediction

log = logging.getLogger(__name__)

router = APIRouter(tags=["scoring"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute)


def _elapsed_ms(request: Request) -> float:
    start: float = request.state.start
    return round((time.perf_counter() - start) * 1000, 3)


def answer(transaction: TransactionIn, p: Prediction, version: str, ms: float) -> dict[str, Any]:
    """One ``ScoreOut`` as plain data (the field order of the model)."""
    return {
        "transaction_id": transaction.transaction_id,
        "fraud_probability": p.fraud_probability,
        "risk_level": p.risk_level,
        "decision": p.decision,
        "ae_score": p.ae_score,
        "clf_score": p.clf_score,
        "reasons": [
            {
                "code": r.code,
                "feature": r.feature,
                "source": r.source,
                "contribution": r.contribution,
                "value": r.value,
            }
            for r in p.reasons
        ],
        "model_version": version,
        "decision_source": p.decision_source,
        "degraded": p.degraded,
        "latency_ms": ms,
    }


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
        )
        for t, p in zip(transactions, predictions, strict=True)
    ]
    try:
        await runtime.audit.append(records)
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


@router.post("/v1/predict", response_model=ScoreOut, summary="Score one transaction")
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


@router.post("/v1/predict/batch", response_model=BatchOut, summary="Score up to 1,000")
async def predict_batch(batch: BatchIn, request: Request, runtime: RuntimeDep) -> Response:
    """Score many transactions with one online-feature lookup; answers keep their order."""
    limit = runtime.settings.max_batch
    if len(batch.transactions) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {limit} transactions per batch"
        )
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
