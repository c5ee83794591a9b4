"""The dashboard's data: sign-in, the live window, what-if scores and file scoring.

Every route but sign-in needs a session (:mod:`app.dashboard.session`). Scores made here
are what-ifs: they use the live features and model but are not decisions, so they are
not written to the prediction audit log, not pushed to the velocity state and not
counted in the decision metrics; the access log records who asked (key id) and for what.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Runtime, RuntimeDep
from app.api.json_body import StrictJSONRoute
from app.api.routes.predict import answer
from app.dashboard import session
from app.dashboard.explain import explain
from app.dashboard.session import SessionDep
from app.dashboard.state import dashboard_of
from app.dashboard.upload import UploadError, chunk_size, parse_upload, score_events
from app.schemas import TransactionIn
from app.services.rules import DEFAULT_TIERS
from app.services.scoring.decisions import Tiers

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard/api", include_in_schema=False, route_class=StrictJSONRoute)
NO_STORE = {"Cache-Control": "no-store"}


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=512)


def _json(payload: Any, code: int = 200) -> Response:
    return Response(
        orjson.dumps(payload), status_code=code, media_type="application/json", headers=NO_STORE
    )


def tiers_of(runtime: Runtime) -> Tiers:
    bundle = runtime.model.bundle
    return bundle.tiers if bundle is not None else DEFAULT_TIERS


def served_model(runtime: Runtime) -> dict[str, Any]:
    """What is scoring now (the fields the pages show)."""
    loaded = runtime.model
    predictor = runtime.service.predictor
    return {
        "version": predictor.version,
        "decision_source": predictor.source,
        "alias": loaded.alias,
        "registry_version": loaded.registry_version,
        "source": loaded.uri,
        "problem": loaded.problem,
        "feature_service": runtime.settings.feature_service,
        "thresholds": tiers_of(runtime).to_dict(),
    }


@router.post("/session", status_code=204)
async def sign_in(body: SignIn, request: Request, runtime: RuntimeDep) -> Response:
    """Check an API key and keep it as a signed session cookie."""
    response = Response(status_code=204, headers=NO_STORE)
    if not runtime.keys.enabled:
        return response
    throttle = dashboard_of(request).sign_in_failures
    wait = throttle.wait()
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins; wait a few seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    ident = runtime.keys.check(body.key)
    if ident is None:
        throttle.failed()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "that API key is not valid")
    secret = runtime.keys.secret(ident)
    assert secret is not None  # it matched a moment ago
    token = session.issue(secret, ident, runtime.settings.dashboard_session_hours * 3600)
    session.set_cookie(response, runtime, token)
    request.state.api_key = ident
    return response


@router.delete("/session", status_code=204)
async def sign_out(runtime: RuntimeDep) -> Response:
    response = Response(status_code=204, headers=NO_STORE)
    session.clear_cookie(response, runtime)
    return response


@router.get("/live")
async def live(request: Request, runtime: RuntimeDep, _: SessionDep) -> Response:
    """The rolling window, totals since start-up and the model in use."""
    metrics = runtime.metrics
    window = metrics.live.snapshot(runtime.hash_key) if metrics.live is not None else None
    tracker = runtime.service.velocity
    return _json(
        {
            "pod": dashboard_of(request).pod,
            "model": served_model(runtime),
            "window": window,
            "since_start": metrics.totals(),
            "uptime_seconds": round(time.monotonic() - runtime.started, 1),
            "velocity": (
                {"pending": tracker.pending_events, "dropped": tracker.stats.dropped}
                if tracker is not None
                else None
            ),
        }
    )


@router.post("/score")
async def score(
    transaction: TransactionIn, request: Request, runtime: RuntimeDep, _: SessionDep
) -> Response:
    """A what-if score for one transaction, explained in words."""
    (prediction,) = await runtime.service.score_offline([transaction])
    version = runtime.service.predictor.version
    started: float = request.state.start
    ms = round((time.perf_counter() - started) * 1000, 3)
    request.state.log = {
        "what_if": True,
        "transaction_id": transaction.transaction_id,
        "fraud_probability": prediction.fraud_probability,
    }
    tiers = tiers_of(runtime)
    return _json(
        {
            "answer": answer(transaction, prediction, version, ms),
            "explanation": explain(prediction, tiers),
            "thresholds": tiers.to_dict(),
            "recorded": False,
        }
    )


@router.post("/batch")
async def batch(request: Request, runtime: RuntimeDep, _: SessionDep) -> Response:
    """Score an uploaded CSV (``text/csv`` body) as a stream of JSON-line events."""
    state = dashboard_of(request)
    if state.upload_lock.locked():
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "another file is being scored on this pod; try again in a moment",
            headers={"Retry-After": "5"},
        )
    try:
        parsed = parse_upload(await request.body())
    except UploadError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    chunk = chunk_size(len(parsed.rows), runtime.settings.max_batch)
    request.state.log = {"what_if": True, "rows": len(parsed.rows), "invalid": parsed.invalid}

    async def events() -> Any:
        async with state.upload_lock:
            async for event in score_events(runtime.service, parsed, chunk):
                yield event

    return StreamingResponse(
        events(),
        media_type="application/x-ndjson",
        headers={**NO_STORE, "X-Content-Type-Options": "nosniff"},
    )
