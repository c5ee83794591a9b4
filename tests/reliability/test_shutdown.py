"""Graceful shutdown: SIGTERM drains the requests in flight, and a rolling restart of two
workers behind a balancer fails no request."""

from __future__ import annotations

import http.client
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.server import Server
from tests.reliability.processes import free_port, post, serve
from tests.serving import as_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRESTOP_SECONDS = 0.3  # the endpoint-removal delay the Deployment's preStop pause covers


def stopped_cleanly(server: Server, state: Path) -> bool:
    """SIGTERM ended the process after the lifespan's shutdown: uvicorn re-raises the
    signal once it has drained (exit status -15), and the databases were closed (SQLite
    removes the write-ahead log when the last connection closes; a kill leaves it)."""
    status = server.process.wait(timeout=30)
    closed = not (state / "predictions.sqlite-wal").exists()
    return status in (0, -signal.SIGTERM) and closed


def _batch(rows: list[Any], size: int, tag: str) -> dict[str, Any]:
    return {
        "transactions": [
            as_request(rows[i % len(rows)], transaction_id=f"{tag}-{i}") for i in range(size)
        ]
    }


def test_sigterm_finishes_the_requests_in_flight(
    tiny_bundle: Path, feast_repo: Path, recent: pd.DataFrame, tmp_path: Path
) -> None:
    port = free_port()
    # Four batches at once: more than the default admission budget (2) would let in.
    server = serve(
        port, tiny_bundle, feast_repo, tmp_path, tmp_path / "server.log", ADMISSION_BATCH_LIMIT="4"
    )
    rows = list(recent.itertuples())
    finished: list[float] = []

    def send(tag: str) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answer = post(connection, "/v1/predict/batch", _batch(rows, 1000, tag))
        finished.append(time.perf_counter())
        return answer

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(send, f"b{i}") for i in range(4)]
        time.sleep(0.15)  # all four are sent; scoring them takes longer than this
        signalled = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        results = [a.result() for a in answers]
    assert [status for status, _ in results] == [200] * 4
    assert [body["count"] for _, body in results] == [1000] * 4
    assert sum(t > signalled for t in finished) >= 2  # they really were in flight
    assert stopped_cleanly(server, tmp_path)
    with sqlite3.connect(tmp_path / "predictions.sqlite") as audit:
        assert audit.execute("SELECT COUNT(*) FROM predictions").fetchone() == (4000,)


class Balancer:
    """Round-robin over the workers in rotation, like a Service's endpoints: a worker
    leaves the rotation before it is stopped and joins once it is ready."""

    def __init__(self, ports: list[int]) -> None:
        self.rotation = list(ports)
        self.generation = dict.fromkeys(ports, 0)
        self.lock = threading.Lock()
        self.turn = 0

    def pick(self) -> tuple[int, int]:
        with self.lock:
            self.turn += 1
            port = self.rotation[self.turn % len(self.rotation)]
            return port, self.generation[port]

    def remove(self, port: int) -> None:
        with self.lock:
            self.rotation.remove(port)
            self.generation[port] += 1  # callers drop their connections to it

    def add(self, port: int) -> None:
        with self.lock:
            self.rotation.append(port)


def test_a_rolling_restart_of_two_workers_fails_no_request(
    tiny_bundle: Path, feast_repo: Path, recent: pd.DataFrame, tmp_path: Path
) -> None:
    rows = list(recent.itertuples())
    ports = [free_port(), free_port()]
    states: dict[int, Path] = {}  # by process id

    def launch(port: int) -> Server:
        state = tmp_path / f"worker{len(states)}"
        # Six clients may all send a batch at once: more than the default budget (2).
        server = serve(
            port, tiny_bundle, feast_repo, state, state / "server.log", ADMISSION_BATCH_LIMIT="6"
        )
        states[server.process.pid] = state
        return server

    workers = {port: launch(port) for port in ports}
    balancer = Balancer(ports)
    stop = threading.Event()
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        connections: dict[tuple[int, int], http.client.HTTPConnection] = {}
        i = 0
        while not stop.is_set():
            i += 1
            key = balancer.pick()
            connection = connections.get(key)
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", key[0], timeout=30)
                connections[key] = connection
            if i % 10 == 0:  # a slower request now and then, to be in flight at SIGTERM
                path, body = "/v1/predict/batch", _batch(rows, 200, f"c{number}-{i}")
            else:
                path, body = "/v1/predict", as_request(rows[i % len(rows)])
            try:
                status, _ = post(connection, path, body)
                outcome = (status, "")
            except (OSError, http.client.HTTPException) as exc:
                outcome = (0, repr(exc))
                connections.pop(key).close()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        for port in ports:  # one worker after the other, as a Deployment rolls
            balancer.remove(port)
            time.sleep(PRESTOP_SECONDS)
            old = workers[port]
            old.process.send_signal(signal.SIGTERM)
            assert stopped_cleanly(old, states[old.process.pid])
            workers[port] = launch(port)
            balancer.add(port)
            time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for worker in workers.values():
            worker.stop()
    failures = [o for o in outcomes if o[0] != 200]
    print(f"rolling restart: {len(outcomes)} requests, {len(failures)} failed")
    assert len(outcomes) > 200
    assert failures == []
