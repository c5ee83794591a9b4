"""The dashboard's data: sign-in, the live window, what-if scores and file scoring.

Every route but sign-in needs a session (:mod:`app.dashboard.session`). Scores made here
are what-ifs: they use the live features and model but are not decisions, so they are
not written to the prediction audit log, not pushed to the velocity state and not
counted in the decision metrics; the access log records who asked (key id) and for what.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Runtime, RuntimeDep
from app.api.json_body import StrictJSONRoute
from app.dashboard import session
from app.dashboard.explain import explain
from app.dashboard.guards import client_address
from app.dashboard.session import SessionDep
from app.dashboard.state import dashboard_of, guards_of
from app.dashboard.upload import (
    TooManyRows,
    UploadError,
    UploadResponse,
    chunk_size,
    parse_upload,
    score_events,
)
from app.schemas import TransactionIn
from app.schemas.answers import answer
from app.services.rules import DEFAULT_TIERS
from fraud_model.decisions import Tiers

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


def _too_many(message: str, wait: float) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


@router.post("/session", status_code=204)
async def sign_in(body: SignIn, request: Request, runtime: RuntimeDep) -> Response:
    """Check an API key and keep it as a signed session cookie. Failed sign-ins are
    throttled per client address, sign-ins per key."""
    response = Response(status_code=204, headers=NO_STORE)
    if not runtime.keys.enabled:
        return response
    guards = guards_of(request, runtime.settings)
    address = client_address(request.client.host if request.client else None)
    wait = guards.failures.wait(address)
    if wait > 0:
        raise _too_many("too many failed sign-ins from this address; wait a few seconds", wait)
    ident = runtime.keys.check(body.key)
    if ident is None:
        guards.failures.spend(address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "that API key is not valid")
    wait = guards.sign_ins.take(ident)
    if wait > 0:
        raise _too_many("too many sign-ins with this key; wait a little", wait)
    secret = runtime.keys.secret(ident)
    assert secret is not None  # it matched a moment ago
    token = session.issue(secret, ident, guards.session_seconds)
    session.set_cookie(response, runtime, token)
    request.state.api_key = ident
    return response


@router.delete("/session", status_code=204)
async def sign_out(request: Request, runtime: RuntimeDep) -> Response:
    """End the session: its cookie is cleared, and its id revoked on this pod until it
    would have expired, so a copy of the cookie stops working too."""
    found = session.current(request, runtime)
    if isinstance(found, session.Session):
        guards_of(request, runtime.settings).revocations.revoke(
            found.session_id, found.ident, found.expires
        )
        request.state.api_key = found.ident
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
    """Score an uploaded CSV (``text/csv`` body) as a stream of JSON-line events. The
    pod's upload slot is taken before the body is read, the file is checked on a worker
    thread, and the slot is freed when the stream ends (or the request fails)."""
    slot = guards_of(request, runtime.settings).uploads
    if not slot.try_take():
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "another file is being scored on this pod; try again in a moment",
            headers={"Retry-After": "5"},
        )
    try:
        body = await request.body()  # bounded by MAX_BODY_BYTES (413) and the body timeout
        max_rows = runtime.settings.dashboard_upload_max_rows
        parsed = await asyncio.to_thread(parse_upload, body, max_rows)
    except TooManyRows as exc:
        slot.free()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
    except UploadError as exc:
        slot.free()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except BaseException:
        slot.free()
        raise
    chunk = chunk_size(len(parsed.rows), runtime.settings.max_batch)
    request.state.log = {"what_if": True, "rows": len(parsed.rows), "invalid": parsed.invalid}
    return UploadResponse(
        score_events(runtime.service, parsed, chunk),
        on_close=slot.free,
        media_type="application/x-ndjson",
        headers={**NO_STORE, "X-Content-Type-Options": "nosniff"},
    )
