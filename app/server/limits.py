"""The edge limits the HTTP protocol enforces, and the count of what it refused.

The protocol runs in uvicorn, outside the FastAPI app and its lifespan, so its refusals are
kept in one process-wide :data:`REFUSALS` that :class:`app.services.metrics.ServiceMetrics`
exposes as ``fraud_http_refused_total{reason}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from app.core.config import Settings

log = logging.getLogger("app.edge")

REASONS = (
    "request_line_too_long",  # 414
    "headers_too_large",  # 431
    "too_many_headers",  # 431
    "malformed_request",  # 400 (HTTP/0.9, bad request line, h11 parse error)
    "head_timeout",  # 408
    "body_timeout",  # 408
    "too_many_connections",  # 503
)


@dataclass(frozen=True)
class EdgeLimits:
    """Per-process limits of the HTTP protocol (see the ``http_*`` settings)."""

    max_request_line_bytes: int
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int
    linger_seconds: float
    linger_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_request_line_bytes=settings.http_max_request_line_bytes,
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            header_timeout_seconds=settings.http_header_timeout_seconds,
            body_timeout_seconds=settings.http_body_timeout_seconds,
            max_connections=settings.http_max_connections,
            linger_seconds=settings.http_linger_seconds,
            linger_bytes=settings.http_linger_bytes,
        )


class Refusals:
    """Refusals by reason since start-up, and one warning per reason per second at most."""

    def __init__(self, log_interval: float = 1.0) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._log_interval = log_interval
        self._last_log: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def refuse(self, reason: str, status: int, client: tuple[str, int] | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts[reason] += 1
            if now - self._last_log.get(reason, -self._log_interval) < self._log_interval:
                self._unlogged[reason] += 1
                return
            self._last_log[reason] = now
            suppressed = self._unlogged.pop(reason, 0)
        log.warning(
            "http request refused",
            extra={
                "fields": {
                    "reason": reason,
                    "status": status,
                    "client": client[0] if client else None,
                    "suppressed_since_last": suppressed,
                }
            },
        )

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


REFUSALS = Refusals()
