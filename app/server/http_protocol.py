"""uvicorn's h11 protocol with the edge limits of :class:`app.server.limits.EdgeLimits`.

Before h11 sees a request head, its bytes are checked here, so the answer is specific and
comes as soon as the limit is passed: 414 for a request line over the limit, 431 for too
many or too large headers, 400 at once for a request line that is not
``METHOD target HTTP/1.x`` (HTTP/0.9 included). The head must arrive within the head
timeout (from the connection's first byte or from the first byte of the next request on a
kept-alive one) and the body within the body timeout, else 408. Past the connection cap a
new connection gets a 503. Each refusal is counted and logged (:data:`REFUSALS`).

Every refusal, and every response sent before its request body was read (the app's early
413), ends with a lingering close: shut down writing, read and discard what the client is
still sending (up to the linger time and byte budget), then close. Closing at once with
unread data makes the kernel send a reset, and a client still writing its body (Python's
``http.client``) reports the reset instead of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import h11
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from app.server.limits import REFUSALS, EdgeLimits

_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP/1\.[01]\r?")
# uvicorn logs one warning per malformed request; the refusals' own log is rate-limited, so
# uvicorn's h11 messages are kept to errors (an app exception is still logged).
_H11_LOG = logging.getLogger("app.edge.h11")
_PHRASES = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def _response(status: int, detail: str) -> bytes:
    body = orjson.dumps({"detail": detail})
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES[status]),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class _CycleTransport:
    """The transport as a request cycle sees it: its ``close`` lingers when needed."""

    def __init__(self, protocol: EdgeProtocol) -> None:
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol.transport, name)

    def close(self) -> None:
        self._protocol.close_after_response()


class EdgeProtocol(H11Protocol):
    """See the module docstring. uvicorn builds one per connection; ``limits`` is bound
    with :func:`functools.partial` in ``app.__main__``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if _H11_LOG.level != logging.ERROR:
            _H11_LOG.setLevel(logging.ERROR)
        self.logger = _H11_LOG
        self.limits = limits
        self._head = bytearray()  # the current request head, until it is complete
        self._in_head = True
        self._deadline: asyncio.TimerHandle | None = None
        self._lingering = False
        self._linger_left = 0

    # connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if over:
            self._refuse(503, "too_many_connections", "too many connections, retry later")
            return
        self._arm(self.limits.header_timeout_seconds, "head_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._lingering:
            self.transport.close()
            return
        super().shutdown()

    # reading

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self.transport.close()
            return
        if self._in_head:
            if self._deadline is None:
                self._arm(self.limits.header_timeout_seconds, "head_timeout")
            if not self._check_head(data):
                return
        cycle = self.cycle
        super().data_received(data)
        self._after_events(cycle)

    def _after_events(self, previous: RequestResponseCycle | None) -> None:
        """Track the request h11 just parsed: its head is done, its body is timed."""
        if self._lingering or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not previous:  # a new request's head was parsed
            self._in_head = False
            self._head.clear()
            self._disarm()
            cycle.transport = _CycleTransport(self)  # type: ignore[assignment]
            if cycle.more_body and self.conn.their_state is h11.SEND_BODY:
                self._arm(self.limits.body_timeout_seconds, "body_timeout")
        elif not self._in_head and cycle is not None and not cycle.more_body:
            self._disarm()  # the body is complete

    def _check_head(self, data: bytes) -> bool:
        """Refuse the head if it passes a limit; False once refused."""
        limits = self.limits
        start = len(self._head)
        self._head += data[: limits.max_header_bytes + 1 - start]
        head = self._head
        line_end = head.find(b"\n")
        if line_end < 0:
            if len(head) > limits.max_request_line_bytes:
                return self._refuse(414, "request_line_too_long", "request line too long")
            return True
        if line_end > limits.max_request_line_bytes:
            return self._refuse(414, "request_line_too_long", "request line too long")
        if start <= line_end and not _REQUEST_LINE.fullmatch(head, 0, line_end):
            return self._refuse(400, "malformed_request", "malformed request line")
        end = head.find(b"\r\n\r\n", max(0, start - 3))
        if end < 0:
            end = head.find(b"\n\n", max(0, start - 1))
        headers = head.count(b"\n", 0, end) if end >= 0 else head.count(b"\n") - 1
        if headers > limits.max_headers:
            return self._refuse(431, "too_many_headers", "too many request headers")
        if end < 0 and len(head) > limits.max_header_bytes:
            return self._refuse(431, "headers_too_large", "request headers too large")
        return True

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "malformed_request", "malformed request")

    # answering

    def on_response_complete(self) -> None:
        if self._lingering:
            return
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the body was read (early 413): do not read it as a request.
            self.server_state.total_requests += 1
            self._linger()
            return
        self._in_head = True
        cycle = self.cycle
        super().on_response_complete()  # may start a pipelined request
        self._after_events(cycle)

    def close_after_response(self) -> None:
        """The cycle closes the connection: linger if the request body is still coming."""
        if self.conn.their_state is h11.SEND_BODY and not self._lingering:
            self._linger()
        elif not self._lingering:
            self.transport.close()

    def _refuse(self, status: int, reason: str, detail: str) -> bool:
        REFUSALS.refuse(reason, status, self.client)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() now returns http.disconnect
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return False
        if not self.transport.is_closing():
            self.transport.write(_response(status, detail))
            self._linger()
        return False

    def _linger(self) -> None:
        self._disarm()
        self._unset_keepalive_if_required()
        self._lingering = True
        self._linger_left = self.limits.linger_bytes
        self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(self.limits.linger_seconds, self.transport.close)

    # timers

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            detail = "request head" if reason == "head_timeout" else "request body"
            self._refuse(408, reason, f"{detail} not received in time")
