"""The edge protocol (app/server/) on a real uvicorn server on 127.0.0.1, driven with raw
sockets: each limit's status code, and that ``/healthz`` still answers meanwhile."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import cast

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.server.http_protocol import EdgeProtocol
from app.server.limits import REFUSALS, EdgeLimits
from benchmarks.server import free_port

LIMITS = EdgeLimits(
    max_request_line_bytes=1_024,
    max_header_bytes=4_096,
    max_headers=20,
    header_timeout_seconds=1.0,
    body_timeout_seconds=1.0,
    max_connections=40,
    linger_seconds=2.0,
    linger_bytes=16_777_216,
)
MAX_BODY = 1_024


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/healthz``; any POST answers 413 at once when Content-Length is over ``MAX_BODY``
    (as the service's middleware does), else reads the body and echoes its size."""
    if scope["type"] != "http":
        return
    status, body = 200, b"ok"
    if scope["method"] == "POST":
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if int(length) > MAX_BODY:
            status, body = 413, b"too large"
        else:
            size, more = 0, True
            while more:
                message = await receive()
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
            body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    number = free_port()
    protocol = cast("type[asyncio.Protocol]", partial(EdgeProtocol, limits=LIMITS))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=number, http=protocol, loop="asyncio", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield number
    server.should_exit = True
    thread.join(10)


def exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[int, float]:
    """Send ``data`` on a new connection; the status line's code and seconds to read it
    all (until the server closes). 0 when the connection was reset or nothing came."""
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(wait)
        if data:
            sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65_536):
                reply += chunk
        except OSError:
            return 0, time.perf_counter() - began
    code = int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return code, time.perf_counter() - began


def healthz(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def test_request_line_too_long_gets_414(port: int) -> None:
    assert exchange(port, b"GET /" + b"a" * 2_000 + b" HTTP/1.1\r\n\r\n")[0] == 414


def test_too_large_headers_get_431(port: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert exchange(port, head)[0] == 431


def test_too_many_headers_get_431(port: int) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(20))  # 21 with Host
    assert exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")[0] == 431
    few = b"".join(b"X-H%d: v\r\n" % i for i in range(18))  # 20 with Host, Connection
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + few + b"\r\n"
    assert exchange(port, request)[0] == 200


@pytest.mark.parametrize("line", [b"GET /\r\n", b"GET / HTTP/2.0\r\n\r\n", b"\x16\x03\x01junk\r\n"])
def test_http09_and_malformed_request_lines_get_400_at_once(port: int, line: bytes) -> None:
    code, seconds = exchange(port, line)
    assert code == 400
    assert seconds < 0.5


def test_a_head_that_does_not_arrive_in_time_gets_408(port: int) -> None:
    before = REFUSALS.counts().get("head_timeout", 0)
    code, seconds = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert code == 408
    assert 0.9 < seconds < 2.5
    assert REFUSALS.counts()["head_timeout"] == before + 1
    code, seconds = exchange(port, b"")  # connected, never sent a byte
    assert code == 408


def test_a_body_that_does_not_arrive_in_time_gets_408(port: int) -> None:
    head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + b"a" * 100
    code, seconds = exchange(port, head)
    assert code == 408
    assert 0.9 < seconds < 2.5


def test_keep_alive_and_bodies_still_work(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        connection.request("POST", "/x", body=b"a" * 1_000)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"1000")
    connection.close()


@pytest.mark.parametrize("close", [False, True])
def test_early_413_reaches_a_client_streaming_its_body(port: int, close: bool) -> None:
    """http.client sends the whole body before reading; urllib also sends Connection:
    close. Without a lingering close both see a reset instead of the 413."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Length": str(80 * 65_536), **({"Connection": "close"} if close else {})}
    connection.request("POST", "/x", body=(b"x" * 65_536 for _ in range(80)), headers=headers)
    assert connection.getresponse().status == 413
    connection.close()


def test_connections_past_the_cap_get_503_and_healthz_answers_after(port: int) -> None:
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.2)
        assert exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert healthz(port) == 200


def test_healthz_answers_while_slow_clients_hold_connections(port: int) -> None:
    slow = []
    for _ in range(30):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        slow.append(sock)
    try:
        assert healthz(port) == 200
        time.sleep(LIMITS.body_timeout_seconds + 0.5)
        for sock in slow:  # each was answered 408 and closed
            sock.settimeout(3)
            assert sock.recv(100).startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()
