"""Typed dependencies: the runtime built in the lifespan, and the API-key check."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from app.core.config import Settings
from app.services.features import OnlineFeatures
from app.services.label_log import LabelLog
from app.services.metrics import ServiceMetrics
from app.services.model_loader import LoadedModel
from app.services.scoring_service import ScoringService


@dataclass
class Runtime:
    """Everything loaded once at start-up, kept on ``app.state.runtime``."""

    settings: Settings
    model: LoadedModel
    features: OnlineFeatures | None
    feature_problem: str | None
    service: ScoringService
    labels: LabelLog
    metrics: ServiceMetrics
    started: float = field(default_factory=time.monotonic)
    accepting: bool = True  # False once shutdown begins: /readyz turns 503 to drain

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
    runtime: RuntimeDep, key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """401 unless ``X-API-Key`` matches one configured key (constant-time comparison)."""
    keys = runtime.settings.keys
    if not keys:
        return
    supplied = (key or "").encode()
    matched = False
    for candidate in keys:  # compare against every key: the time does not depend on which
        matched |= hmac.compare_digest(supplied, candidate.encode())
    if not matched:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key (X-API-Key header)",
            headers={"WWW-Authenticate": "ApiKey"},
        )
