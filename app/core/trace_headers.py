"""Headers the OpenTelemetry ASGI instrumentation can read without failing the request.

The instrumentation decodes the headers it reads (``traceparent``, ``tracestate``,
``baggage``, ``host``, ``user-agent``) as UTF-8, falling back to ``unicode_escape``; a value
that is neither (``traceparent: \\xa1\\``, found by the fuzz tests) raises inside its
middleware, before any handler of ours runs: a 500. :class:`TraceHeaderGuard` sits outside
the instrumented stack and rewrites such a value from Latin-1 (what HTTP allows in a header)
to UTF-8, so the bytes still mean the same characters: an invalid ``traceparent`` then
starts a new trace, as the W3C rules say, and the request is answered as it would be
without tracing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

READ_BY_INSTRUMENTATION = frozenset(
    {b"traceparent", b"tracestate", b"baggage", b"host", b"user-agent"}
)


def readable(value: bytes) -> bool:
    """Whether the instrumentation's decoding (UTF-8, else ``unicode_escape``) accepts it."""
    if value.isascii():
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        try:
            value.decode("unicode_escape")
        except UnicodeDecodeError:
            return False
    return True


class TraceHeaderGuard:
    """ASGI middleware: the values of :data:`READ_BY_INSTRUMENTATION` that the
    instrumentation cannot decode, re-encoded as UTF-8 (from Latin-1)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if any(k in READ_BY_INSTRUMENTATION and not readable(v) for k, v in headers):
                scope = dict(scope)
                scope["headers"] = [
                    (k, v.decode("latin-1").encode("utf-8"))
                    if k in READ_BY_INSTRUMENTATION and not readable(v)
                    else (k, v)
                    for k, v in headers
                ]
        await self.app(scope, receive, send)
