"""Slow and idle clients against the real process: thousands of incomplete requests are
answered 408 and closed within the head/body timeouts, ``/healthz`` and ``/v1/predict``
answer while they are held, and file descriptors return to the baseline
(docs/reliability.md, "Edge")."""

from __future__ import annotations

import http.client
import socket
import time

import orjson
import pandas as pd
import pytest

from tests.abuse.conftest import Launch
from tests.serving import as_request

pytestmark = [pytest.mark.abuse]

SLOW = 2_000  # within this machine's fd limit (ulimit -n 20000) for both processes
TIMEOUT = 2.0
BODY_HEAD = (
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 900\r\n\r\n"
)


def _status(port: int, method: str, path: str, body: bytes | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _requests(metrics: str, route: str, status: str) -> int:
    prefix = f'fraud_http_requests_total{{method="POST",route="{route}",status="{status}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return int(float(lines[0].removeprefix(prefix))) if lines else 0


def test_slow_clients_are_timed_out_and_scoring_answers_meanwhile(
    launch: Launch, recent: pd.DataFrame
) -> None:
    server = launch(
        HTTP_HEADER_TIMEOUT_SECONDS=str(TIMEOUT),
        HTTP_BODY_TIMEOUT_SECONDS=str(TIMEOUT),
        HTTP_LINGER_SECONDS="1",
    )
    body = orjson.dumps(as_request(next(recent.itertuples())))
    # The first scoring request opens the audit log and store connections: count after it.
    assert _status(server.port, "POST", "/v1/predict", body) == 200
    baseline = server.open_files()
    held: list[socket.socket] = []
    began = time.perf_counter()
    for i in range(SLOW):
        sock = socket.create_connection(("127.0.0.1", server.port))
        if i % 3 == 1:  # a head that never ends
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        elif i % 3 == 2:  # a body that never ends
            sock.sendall(BODY_HEAD + b"{")
        held.append(sock)  # i % 3 == 0: connected, silent
    try:
        assert _status(server.port, "GET", "/healthz") == 200
        assert _status(server.port, "POST", "/v1/predict", body) == 200
        assert time.perf_counter() - began < 30
        time.sleep(TIMEOUT + 3)
        answered = 0
        for sock in held:
            sock.settimeout(5)
            answered += sock.recv(64).startswith(b"HTTP/1.1 408")
        assert answered == SLOW
        # A refused connection lingers (HTTP_LINGER_SECONDS) for the client's EOF, then closes.
        deadline = time.perf_counter() + 10
        while server.open_files() > baseline + 5 and time.perf_counter() < deadline:
            time.sleep(0.2)
        assert server.open_files() <= baseline + 5
        # The cut-off bodies are neither 400s nor 500s in the metrics: nobody got those.
        metrics = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        counts = {
            code: _requests(text, "/v1/predict", code) for code in ("400", "422", "499", "500")
        }
        assert counts == {"400": 0, "422": 0, "499": SLOW // 3, "500": 0}
    finally:
        for sock in held:
            sock.close()
