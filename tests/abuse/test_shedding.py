"""Load shedding against the real process: a flood of single transactions plus batches of
1,000 back to back. The admitted single requests keep their latency, the excess gets a fast
503 with ``Retry-After`` (never a timeout or a broken connection), and the batches do not
starve the singles (docs/reliability.md, "Load shedding")."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import orjson
import pandas as pd
import pytest

from benchmarks.loadgen import Run, closed_loop, encode_requests
from benchmarks.server import metrics_text
from tests.abuse.conftest import Launch
from tests.serving import as_request

pytestmark = [pytest.mark.abuse]

CONNECTIONS = 300  # single-transaction clients, each sending again as soon as answered
BATCH_CONNECTIONS = 2  # clients sending batches of 1,000 back to back
SECONDS = 8.0
PAUSE = 1.0  # a refused client waits as Retry-After (1 s) asks before sending again
# Measured by the client, so they include the load generator's own scheduling: its
# process shares this machine's two cores with the server (and with other work). Today's
# code: p50 1.2 s, p99 9.5 s; with shedding, p50 40-50 ms, p99 0.8-1.2 s here
# (docs/reliability.md, "Load shedding", has the server-side figures).
ADMITTED_P50_MS = 250.0
ADMITTED_P99_MS = 1_500.0


def _bodies(recent: pd.DataFrame) -> tuple[list[bytes], bytes]:
    rows = list(recent.itertuples())
    singles = [orjson.dumps(as_request(row)) for row in rows[:500]]
    batch = [as_request(rows[i % len(rows)], transaction_id=f"b{i}") for i in range(1_000)]
    return singles, orjson.dumps({"transactions": batch})


def _probe(port: int, body: bytes) -> tuple[int, str | None, Any]:
    """One single request on a fresh connection: status, Retry-After and the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), json.loads(response.read())
    finally:
        connection.close()


def _shed_total(port: int) -> float:
    """``fraud_shed_total`` for ``/v1/predict`` from the server's ``/metrics``."""
    for line in metrics_text(port).splitlines():
        if line.startswith('fraud_shed_total{route="/v1/predict"}'):
            return float(line.split()[-1])
    return 0.0


async def _overload(port: int, singles: list[bytes], batch: bytes) -> tuple[Run, Run, list[Any]]:
    host = "127.0.0.1"
    single_requests = encode_requests(host, port, "/v1/predict", singles)
    batch_requests = encode_requests(host, port, "/v1/predict/batch", [batch])
    probes: list[tuple[int, str | None, Any]] = []
    done = asyncio.Event()

    async def probing() -> None:
        while not done.is_set():
            probes.append(await asyncio.to_thread(_probe, port, singles[0]))
            await asyncio.sleep(0.05)

    prober = asyncio.create_task(probing())
    try:
        single_run, batch_run = await asyncio.gather(
            closed_loop(host, port, single_requests, CONNECTIONS, SECONDS, PAUSE),
            closed_loop(host, port, batch_requests, BATCH_CONNECTIONS, SECONDS, PAUSE),
        )
    finally:
        done.set()
        await prober
    return single_run, batch_run, probes


def test_overload_is_shed_fast_and_admitted_singles_keep_their_latency(
    launch: Launch, recent: pd.DataFrame
) -> None:
    server = launch(VELOCITY_PUSH="false")
    singles, batch = _bodies(recent)
    single_run, batch_run, probes = asyncio.run(_overload(server.port, singles, batch))
    summary = {
        "singles": {**single_run.summary(), "statuses": single_run.statuses},
        "batches": {**batch_run.summary(), "statuses": batch_run.statuses},
        "probes": sorted({(status, after) for status, after, _ in probes}),
    }
    print(json.dumps(summary, default=str))  # the figures docs/reliability.md quotes

    # Every request got an answer: 200 or a 503, never a timeout or a broken connection.
    assert single_run.errors == single_run.refused, summary
    assert set(single_run.statuses) <= {200, 503}, summary
    assert batch_run.errors == batch_run.refused, summary
    assert set(batch_run.statuses) <= {200, 503}, summary
    # The excess was shed, and the admitted singles kept the SLO.
    assert single_run.statuses.get(503, 0) > 0, summary
    assert single_run.count > 1_000, summary
    assert single_run.percentile(50) < ADMITTED_P50_MS, summary
    assert single_run.percentile(99) < ADMITTED_P99_MS, summary
    # Batches were scored too (their own budget), not starved or all refused.
    assert batch_run.count >= 2, summary
    # A shed is a 503 with Retry-After and a JSON detail.
    shed = [(after, answer) for status, after, answer in probes if status == 503]
    assert shed, summary
    # Each one counted in the metric (the access log has a line for each, too).
    assert _shed_total(server.port) == single_run.statuses[503] + len(shed), summary
    for after, answer in shed:
        assert after is not None and int(after) >= 1
        assert "overloaded" in answer["detail"]
