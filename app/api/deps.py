"""Typed dependencies: the runtime built in the lifespan, and the API-key check."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader

from app.core.config import Settings
from app.services.api_keys import ApiKeys
from app.services.dependency_health import FileWatch
from app.services.feature_health import FeatureStoreHealth
from app.services.features import OnlineFeatures
from app.services.label_log import LabelLog
from app.services.metrics import ServiceMetrics
from app.services.model_loader import LoadedModel
from app.services.prediction_log import PredictionLog
from app.services.rate_limit import RateLimiter
from app.services.record_desk import RecordDesk
from app.services.record_shipper import RecordShipper
from app.services.rulebook import Rulebook
from app.services.scoring_service import ScoringService
from app.services.shadow import ShadowScorer


@dataclass
class Runtime:
    """Everything loaded once at start-up, kept on ``app.state.runtime``."""

    settings: Settings
    model: LoadedModel
    features: OnlineFeatures | None
    feature_problem: str | None
    service: ScoringService
    labels: LabelLog
    audit: PredictionLog
    record: RecordShipper  # ships audit rows and labels to the system of record
    keys: ApiKeys
    limiter: RateLimiter
    metrics: ServiceMetrics
    rulebook: Rulebook  # the analysts' rule set in force
    desk: RecordDesk  # the API's own connection to the system of record
    challenger: LoadedModel | None = None  # None: no CHALLENGER_URI
    shadow: ShadowScorer | None = None  # scores the challenger off the request path
    feature_health: FeatureStoreHealth | None = None  # None: no store, or one it cannot check
    file_watch: FileWatch | None = None  # checks the audit and label logs' files
    rules_watch: FileWatch | None = None  # reloads the rule file when it changes
    started: float = field(default_factory=time.monotonic)
    accepting: bool = True  # False once shutdown begins: /readyz turns 503 to drain
    reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def hash_key(self) -> bytes:
        return self.settings.hash_key


def runtime_of(request: Request) -> Runtime:
    """The runtime, or 503 while the lifespan is still loading it."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is starting")
    return runtime


# Dependencies are ``async def``: FastAPI runs plain ``def`` dependencies on a worker
# thread, and two thread hops per request cost more than the scoring itself.
async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="required when the service has API keys"
)


async def require_api_key(
    request: Request, runtime: RuntimeDep, key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """401 unless ``X-API-Key`` matches a valid key (constant-time comparison); 429 when
    the key has used up its rate. The key's id (never the key) goes to the access log."""
    ident = runtime.keys.check(key) if runtime.keys.enabled else "anonymous"
    if ident is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key (X-API-Key header)",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    request.state.api_key = ident
    spend_rate(runtime, ident)


def spend_rate(runtime: Runtime, ident: str) -> None:
    """Take one request from the key's bucket; 429 with ``Retry-After`` when it is empty."""
    wait = runtime.limiter.take(ident)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {runtime.limiter.rate:g} requests per second for this API key exceeded",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def only_query(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (422) query parameters other than ``names``: a misspelt
    filter is an error, not silently the default."""
    allowed = frozenset(names)

    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise RequestValidationError(
                [
                    {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra"}
                    for name in unknown
                ]
            )

    return check
