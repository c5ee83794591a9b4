"""One pure-ASGI middleware for every request: limits, ids, metrics and the access log.

- 415 before routing when a request with a body is not ``application/json`` (a POST
  without a body, such as a reload, needs no content type), or, on the dashboard's file
  upload, not ``text/csv``;
- 413 when ``Content-Length`` exceeds the limit, or when a streamed body does;
- ``X-Request-Id`` (the caller's, if it is a plain token, else a new one) and
  ``X-Trace-Id`` (the trace of the SERVER span that ``opentelemetry-instrumentation-fastapi``
  opens around this middleware, :mod:`app.core.telemetry`) on every response;
- request count and latency by route template and status, and one JSON log line with
  the trace id and whatever the route put in ``request.state.log`` (model version, ...).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.telemetry import current_trace_id
from app.services.metrics import ServiceMetrics

log = logging.getLogger("app.access")

_TOKEN = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer"


class BodyTooLarge(HTTPException):
    """The streamed body passed the limit. An ``HTTPException``, so FastAPI's body
    reader lets it through to the 413 handler instead of calling it malformed."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than {limit} bytes")


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _is_csv(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"text/csv"


class RequestMiddleware:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        csv_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.csv_paths = csv_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id")
        request_id = incoming.decode() if incoming and _TOKEN.match(incoming) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["start"] = start
        state["request_id"] = request_id
        status_code = 500
        started = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status_code, started
            if message["type"] == "http.response.start":
                started = True
                status_code = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                trace_id = current_trace_id()
                if trace_id is not None:
                    extra.append((b"x-trace-id", trace_id.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
                if not message.get("more_body", False):  # the server's time starts here
                    state["received"] = time.perf_counter()
            elif message["type"] == "http.disconnect" and not started and "received" not in state:
                state["cut_off"] = True  # the body never came whole: nobody hears the answer
            return message

        try:
            rejection = self._reject(scope["method"], headers, scope["path"])
            if rejection is not None:
                await _send_error(send_with_ids, *rejection)
            else:
                await self.app(scope, limited_receive, send_with_ids)
        except BodyTooLarge as exc:
            if not started:
                await _send_error(send_with_ids, 413, str(exc.detail))
        finally:
            if state.get("cut_off"):
                # Gone mid-body (it hung up, or the edge's body timeout answered 408): what
                # the app makes of the half body reaches no one, so neither log nor metric
                # may call it a 400 or a 500.
                status_code = CLIENT_CLOSED
            self._account(scope, state, status_code, start)

    def _too_large(self) -> str:
        return f"body larger than {self.max_body_bytes} bytes"

    def _reject(
        self, method: str, headers: dict[bytes, bytes], path: str
    ) -> tuple[int, str] | None:
        if method not in _BODY_METHODS:
            return None
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return 413, self._too_large()
        has_body = b"transfer-encoding" in headers or (length is not None and int(length) > 0)
        if not has_body:
            return None
        content_type = headers.get(b"content-type")
        if path in self.csv_paths:
            if not _is_csv(content_type):
                return 415, "content type must be text/csv"
        elif not _is_json(content_type):
            return 415, "content type must be application/json"
        return None

    def _account(self, scope: Scope, state: dict[str, Any], status: int, start: float) -> None:
        """Metrics and the Live page get the server's time, from when the body had been
        received (a slow sender's own time is not the service's latency); the access log
        gets the total as ``latency_ms``, and the server's time as ``served_ms``."""
        end = time.perf_counter()
        served = end - state.get("received", start)
        route = scope.get("route")
        template = getattr(route, "path", "unmatched")
        self.metrics.observe_request(template, scope["method"], status, served)
        fields = {
            "request_id": state.get("request_id"),
            "trace_id": current_trace_id(),
            "method": scope["method"],
            "route": template,
            "status": status,
            "latency_ms": round((end - start) * 1000, 3),
            "served_ms": round(served * 1000, 3),
            "api_key": state.get("api_key"),
            **state.get("log", {}),
        }
        log.info("request", extra={"fields": fields})


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
