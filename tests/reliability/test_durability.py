"""SIGKILL during a stream of writes: every write answered 2xx is on disk afterwards, the
databases are intact, and the restarted service carries on from them."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.postgres_server import PostgresServer
from system_of_record.store import open_store
from tests.reliability.processes import free_port, post, serve
from tests.serving import as_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 8
KILLS = 3


def _stream(
    port: int, make: Callable[[int], tuple[str, dict[str, Any]]], stop: threading.Event
) -> tuple[list[tuple[str, dict[str, Any]]], list[int]]:
    """Writes from CLIENTS threads until the server dies: (acknowledged, statuses)."""
    acknowledged: list[tuple[str, dict[str, Any]]] = []
    statuses: list[int] = []
    counter = iter(range(10**9))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            with lock:
                path, body = make(next(counter))
            try:
                status, _ = post(connection, path, body)
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            with lock:
                statuses.append(status)
                if 200 <= status < 300:
                    acknowledged.append((path, body))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return acknowledged, statuses


def _check(state: Path) -> tuple[set[str], dict[str, bool]]:
    """Integrity of both databases; the audited ids and the recorded labels."""
    with sqlite3.connect(state / "predictions.sqlite") as audit:
        assert audit.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        audited = {row[0] for row in audit.execute("SELECT transaction_id FROM predictions")}
    with sqlite3.connect(state / "labels.sqlite") as labels:
        assert labels.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        recorded = {
            row[0]: bool(row[1])
            for row in labels.execute("SELECT transaction_id, is_fraud FROM labels")
        }
    return audited, recorded


def test_no_acknowledged_write_is_lost_to_sigkill(
    tiny_bundle: Path, feast_repo: Path, recent: pd.DataFrame, tmp_path: Path
) -> None:
    rows = list(recent.itertuples())

    def make(i: int) -> tuple[str, dict[str, Any]]:
        if i % 2:
            return "/v1/feedback", {"transaction_id": f"fb-{i}", "is_fraud": i % 4 == 1}
        return "/v1/predict", as_request(rows[i % len(rows)], transaction_id=f"tx-{i}")

    port = free_port()
    state = tmp_path / "state"
    acknowledged_total = 0
    for kill in range(KILLS):
        server = serve(port, tiny_bundle, feast_repo, state, tmp_path / f"server{kill}.log")
        stop = threading.Event()
        killer = threading.Timer(0.8 + 0.3 * kill, server.process.kill)  # SIGKILL mid-stream
        killer.start()
        acknowledged, statuses = _stream(port, lambda i, k=kill: make(i + k * 10**6), stop)
        stop.set()
        assert server.process.wait(timeout=10) == -9
        assert acknowledged, "the server died before any write was answered"
        assert all(200 <= s < 300 for s in statuses), sorted(set(statuses))
        audited, recorded = _check(state)
        lost = [
            body["transaction_id"]
            for path, body in acknowledged
            if (
                body["transaction_id"] not in audited
                if path == "/v1/predict"
                else recorded.get(body["transaction_id"]) != body["is_fraud"]
            )
        ]
        assert lost == []
        acknowledged_total += len(acknowledged)
        print(f"kill {kill}: {len(acknowledged)} acknowledged writes, {len(lost)} lost")

    # The restarted service reads what the killed ones wrote: a label sent again is a
    # duplicate, a different one a conflict.
    server = serve(port, tiny_bundle, feast_repo, state, tmp_path / "after.log")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        _, recorded = _check(state)
        first = next(iter(recorded))
        same = {"transaction_id": first, "is_fraud": recorded[first]}
        other = {"transaction_id": first, "is_fraud": not recorded[first]}
        assert post(connection, "/v1/feedback", same) == (200, {**same, "status": "duplicate"})
        assert post(connection, "/v1/feedback", other)[0] == 409
        assert post(connection, "/v1/predict", make(0)[1])[0] == 200
    finally:
        server.stop()
    assert acknowledged_total >= 100


def _readiness(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/readyz")
    body: dict[str, Any] = json.loads(connection.getresponse().read())
    return body


def _wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_every_acknowledged_write_reaches_postgres_through_kills_and_an_outage(
    tiny_bundle: Path,
    feast_repo: Path,
    recent: pd.DataFrame,
    tmp_path: Path,
    postgres_factory: Callable[[], PostgresServer],
) -> None:
    """SIGKILL mid-stream with the system of record on PostgreSQL, twice, then a database
    outage: after a restart every acknowledged score and label is in the database once."""
    database = postgres_factory()
    rows = list(recent.itertuples())

    def make(i: int) -> tuple[str, dict[str, Any]]:
        if i % 3 == 0:
            return "/v1/feedback", {"transaction_id": f"tx-{i - 1}", "is_fraud": i % 2 == 0}
        return "/v1/predict", as_request(rows[i % len(rows)], transaction_id=f"tx-{i}")

    record = {"RECORD_URL": database.url, "RECORD_PASSWORD_FILE": str(database.password_file)}
    port, state = free_port(), tmp_path / "state"
    acknowledged: list[tuple[str, dict[str, Any]]] = []
    for kill in range(2):
        server = serve(port, tiny_bundle, feast_repo, state, tmp_path / f"pg{kill}.log", **record)
        killer = threading.Timer(1.0 + 0.4 * kill, server.process.kill)
        killer.start()
        answered, statuses = _stream(port, lambda i, k=kill: make(i + k * 10**6), threading.Event())
        assert server.process.wait(timeout=10) == -9
        assert all(200 <= s < 300 for s in statuses), sorted(set(statuses))
        acknowledged += answered

    server = serve(port, tiny_bundle, feast_repo, state, tmp_path / "pg-after.log", **record)
    try:
        _wait_until(lambda: _readiness(port)["system_of_record"]["spooled"] == 0)
        database.stop()  # an outage: scores are still answered, and spooled
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        during = [make(3 * 10**6 + i) for i in range(1, 60) if i % 3]
        for path, body in during:
            assert post(connection, path, body)[0] == 200
        acknowledged += during
        _wait_until(lambda: _readiness(port)["system_of_record"]["status"] == "unavailable")
        ready = _readiness(port)
        assert ready["status"] == "degraded"
        assert ready["system_of_record"]["spooled"] == len(during)
        database.start()
        _wait_until(lambda: _readiness(port)["system_of_record"]["spooled"] == 0)
        assert _readiness(port)["system_of_record"]["status"] == "shipping"
    finally:
        server.stop()

    store = open_store(database.url, database.password_file)
    with store.transaction() as cursor:
        cursor.execute("SELECT transaction_id FROM decisions")
        decisions = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT transaction_id, is_fraud FROM labels")
        labels = dict(cursor.fetchall())
    scored = {b["transaction_id"] for p, b in acknowledged if p == "/v1/predict"}
    labelled = {b["transaction_id"]: b["is_fraud"] for p, b in acknowledged if p != "/v1/predict"}
    assert scored - decisions == set()
    assert {t: labels.get(t) for t in labelled} == labelled
    assert len(scored) >= 100
    print(f"{len(scored)} acknowledged scores and {len(labelled)} labels, all in PostgreSQL")
