"""The load generator against a real server: counts, errors, open-loop pacing."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from benchmarks import loadgen
from benchmarks.http_client import connect
from benchmarks.server import free_port, start


def test_closed_loop_counts_every_answer(static_port: int) -> None:
    requests = loadgen.encode_requests("127.0.0.1", static_port, "/x", [b'{"a":1}', b"{}"])
    run = asyncio.run(loadgen.closed_loop("127.0.0.1", static_port, requests, 4, 0.5))
    assert run.errors == 0 and run.count > 100
    assert run.statuses == {200: run.count}
    summary = run.summary()
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert summary["throughput_rps"] == pytest.approx(run.count / run.seconds, rel=1e-3)


def test_open_loop_sends_at_the_offered_rate(static_port: int) -> None:
    requests = loadgen.encode_requests("127.0.0.1", static_port, "/x", [b"{}"])
    began = time.perf_counter()
    run = asyncio.run(loadgen.open_loop("127.0.0.1", static_port, requests, 200, 1.0))
    elapsed = time.perf_counter() - began
    assert run.count == 200 and run.errors == 0
    assert 0.95 <= elapsed < 2.0  # paced over the second, not sent at once


def test_non_2xx_and_broken_connections_are_errors(static_port: int) -> None:
    refused = free_port()
    with pytest.raises(OSError):
        asyncio.run(loadgen.one_by_one("127.0.0.1", refused, [b"GET / HTTP/1.1\r\n\r\n"], 1))
    run = loadgen.Run(seconds=1.0)
    loadgen._record(run, 503, 0.01)
    loadgen._record(run, 200, 0.02)
    assert (run.errors, run.count, run.statuses) == (1, 1, {503: 1, 200: 1})


def test_one_by_one_is_sequential(static_port: int) -> None:
    requests = loadgen.encode_requests("127.0.0.1", static_port, "/", [b""], method="GET")
    run = asyncio.run(loadgen.one_by_one("127.0.0.1", static_port, requests, 50))
    assert run.count == 50 and run.errors == 0
    assert sum(run.latencies) <= run.seconds


def test_one_by_one_pauses_between_an_answer_and_the_next_request(static_port: int) -> None:
    requests = loadgen.encode_requests("127.0.0.1", static_port, "/", [b""], method="GET")
    run = asyncio.run(loadgen.one_by_one("127.0.0.1", static_port, requests, 10, pause=0.02))
    assert run.count == 10
    # ten pauses of 20 ms, none inside a request's own latency
    assert run.seconds >= sum(run.latencies) + 10 * 0.02
    assert max(run.latencies) < 0.02


def test_a_server_that_exits_is_reported(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match="exited with 3"):
        start(command, free_port(), {}, None, tmp_path / "x.log")


def test_a_connection_closed_while_idle_is_replaced_not_hung(static_port: int) -> None:
    async def scenario() -> tuple[loadgen.Run, bool]:
        conn = await connect("127.0.0.1", static_port)
        conn.close()
        await asyncio.sleep(0.05)
        with pytest.raises(ConnectionError):
            await conn.exchange(b"GET / HTTP/1.1\r\n\r\n")
        requests = loadgen.encode_requests("127.0.0.1", static_port, "/x", [b"{}"])
        run = await loadgen.open_loop("127.0.0.1", static_port, requests, 100, 0.3)
        return run, conn.closed

    run, closed = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert closed and run.count == 30 and run.errors == 0
