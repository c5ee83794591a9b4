"""The one HTTP/1.1 client of the load and measurement tools: asyncio, keep-alive,
Content-Length framing, one request at a time per connection (no pipelining).

Standard library only. :class:`Connection` is the connection and its answer parser, used
as is by :mod:`benchmarks.loadgen` (bench, soak, protocols), which pre-encodes its
requests with :func:`encode` and runs its own pools. :class:`Client` is a pool of them
for the replay (:mod:`benchmarks.replay`): at most ``max_in_flight`` requests at a time to
one loopback server (:func:`parse_url`), each failing with :class:`RequestError` of kind
``timeout`` (no answer within ``timeout`` seconds, connecting included), ``connection``
(refused, reset or closed mid-request) or ``protocol`` (an answer this client cannot
frame, e.g. chunked). A kept-alive connection the server closed while it sat idle is
dropped and replaced, not counted as an error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class NotLoopback(ValueError):
    """The URL does not point at this machine's loopback interface."""


class RequestError(Exception):
    """A request without a usable answer; ``kind`` is how it failed."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class ProtocolError(ConnectionError):
    """An answer this client cannot read; the connection is closed (to a caller that does
    not tell them apart, a broken connection)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the service listens (loopback only)."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_url(url: str) -> Target:
    """``http://`` + 127.0.0.1, ::1 or localhost (which must resolve to loopback only)
    + an optional port; anything else raises :class:`NotLoopback`."""
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise NotLoopback(f"{url!r}: bad port ({exc})") from None
    host = parts.hostname or ""
    if parts.scheme != "http":
        raise NotLoopback(f"{url!r}: only http:// to the local service is supported")
    if host not in LOOPBACK_HOSTS:
        raise NotLoopback(
            f"{url!r}: the replay only talks to a service on this machine "
            f"(host must be one of {', '.join(LOOPBACK_HOSTS)}, not {host or 'empty'!r})"
        )
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise NotLoopback(f"{url!r}: give scheme, host and port only")
    if host == "localhost":
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise NotLoopback(f"{url!r}: localhost does not resolve ({exc})") from None
        addresses = {str(info[4][0]).split("%")[0] for info in infos}
        if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
            raise NotLoopback(f"{url!r}: localhost resolves to {sorted(addresses)}, not loopback")
    return Target(host, port)


def encode(
    method: str,
    path: str,
    authority: str,
    body: bytes = b"",
    headers: str = "",
    framed: bool = True,
) -> bytes:
    """One HTTP/1.1 request (keep-alive): the request line, ``Host``, the ``headers`` lines
    (each ending in CRLF) and, when ``framed``, a JSON ``Content-Type`` and the body's
    ``Content-Length``; then the body."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{headers}"
    if framed:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; the one answer parser."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True  # False once the server said ``Connection: close``

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._parse()
        except ProtocolError as exc:
            self._fail(exc)
            self.close()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _parse(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {lines[0][:80]!r}") from None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"transfer-encoding" in headers:
            raise ProtocolError(
                "the server sent Transfer-Encoding "
                f"{headers[b'transfer-encoding'].decode(errors='replace')}; "
                "this client reads Content-Length framed answers only"
            )
        if b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
        elif status in (204, 304) or status < 200:
            length = 0
        else:
            raise ProtocolError("an answer without Content-Length")
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if headers.get(b"connection", b"").lower() == b"close":
            self.reusable = False
        if not self.waiter.done():
            self.waiter.set_result(Response(status, body))

    async def exchange(self, raw: bytes) -> Response:
        """Send one encoded request and wait for its answer (any status). Raises
        ``ConnectionError`` (:class:`ProtocolError` for an unreadable answer); no time
        limit of its own."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> Connection:
    """A new connection to ``host:port`` (``OSError`` when refused)."""
    _, conn = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return conn


class Client:
    """Requests to one server over a pool of at most ``max_in_flight`` connections."""

    def __init__(
        self, target: Target, max_in_flight: int, timeout: float, api_key: str | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._idle: list[Connection] = []
        self._headers = f"X-API-Key: {api_key}\r\n" if api_key else ""
        self.waited_for_slot = 0  # requests that found every connection busy
        self.replaced_idle = 0  # kept-alive connections found closed by the server

    def _reuse(self) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self.replaced_idle += 1
        return None

    async def request(self, method: str, path: str, body: bytes = b"") -> Response:
        """Send one request and read its answer, any status; raises :class:`RequestError`."""
        raw = encode(
            method, path, self.target.authority, body, self._headers, framed=method == "POST"
        )
        if self._slots.locked():
            self.waited_for_slot += 1
        async with self._slots:
            conn = self._reuse()
            try:
                async with asyncio.timeout(self.timeout):
                    if conn is None:
                        conn = await connect(self.target.host, self.target.port)
                    response = await conn.exchange(raw)
            except TimeoutError as exc:
                detail = f"no answer within {self.timeout:g} s"
                raise self._broken(conn, "timeout", detail) from exc
            except ProtocolError as exc:
                raise self._broken(conn, "protocol", str(exc)) from exc
            except OSError as exc:  # refused, reset, closed
                raise self._broken(conn, "connection", repr(exc)) from exc
            except asyncio.CancelledError:  # the run's time limit: the answer is abandoned
                if conn is not None:
                    conn.close()
                raise
            if conn.reusable and not conn.closed:
                self._idle.append(conn)
            else:
                conn.close()
            return response

    @staticmethod
    def _broken(conn: Connection | None, kind: str, detail: str) -> RequestError:
        if conn is not None:
            conn.close()
        return RequestError(kind, detail)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
