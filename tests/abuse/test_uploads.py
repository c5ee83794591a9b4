"""Dashboard uploads against the real process: one upload per pod at a time (the others
get 429 at once, before their body is read), a bounded row count and memory, and live
``/v1/predict`` keeps its latency while a file is checked and scored.

Each scenario runs while a steady client posts ``/v1/predict`` back to back on one
kept-alive connection; its latencies during the scenario are compared with the same
client's latencies before it. The figures are printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.server import Server
from tests.abuse.conftest import Launch
from tests.serving import as_request

pytestmark = [pytest.mark.abuse]

MAX_BODY = 1_048_576
# Rows of the ordinary files; docs/reliability.md's figures are for ABUSE_UPLOAD_ROWS=15000
# (about 8 s of scoring each, too long for make abuse's budget).
ROWS = int(os.environ.get("ABUSE_UPLOAD_ROWS", "5000"))
HEADER = b"transaction_id,customer_id,terminal_id,timestamp,amount\n"


@dataclass
class Steady:
    """A client posting ``/v1/predict`` back to back: (start, seconds) of each answer;
    and the server's resident memory (MiB), sampled every 50 ms."""

    server: Server
    body: bytes
    samples: list[tuple[float, float]] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        while not self._stop.is_set():
            began = time.perf_counter()
            connection.request("POST", "/v1/predict", self.body, headers)
            response = connection.getresponse()
            response.read()
            self.samples.append((began, time.perf_counter() - began))
            self.failures += response.status != 200
        connection.close()

    def sample_memory(self) -> None:
        while not self._stop.wait(0.05):
            self.rss.append(self.server.rss_mb())

    @staticmethod
    def stats(latencies: list[float]) -> dict[str, float]:
        ms = np.array(latencies) * 1000
        return {
            "requests": len(ms),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1),
        }

    def between(self, begin: float, end: float) -> list[float]:
        return [s for t, s in self.samples if begin <= t < end or (t < begin < t + s)]


@pytest.fixture
def steady(launch: Launch, recent: pd.DataFrame) -> Iterator[Steady]:
    server = launch()
    client = Steady(server, json.dumps(as_request(recent.iloc[0])).encode())
    threads = [
        threading.Thread(target=client.run, daemon=True),
        threading.Thread(target=client.sample_memory, daemon=True),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # warm: the baseline window
    yield client
    client._stop.set()
    for thread in threads:
        thread.join(timeout=90)


def _upload(port: int, body: bytes) -> dict[str, Any]:
    """POST a CSV and read the whole streamed answer: status, Retry-After, seconds to the
    status line and to the end, the last event."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    began = time.perf_counter()
    connection.request("POST", "/dashboard/api/batch", body, {"Content-Type": "text/csv"})
    response = connection.getresponse()
    first = time.perf_counter() - began
    text = response.read()
    lines = [line for line in text.splitlines() if line.strip()]
    connection.close()
    return {
        "status": response.status,
        "retry_after": response.getheader("retry-after"),
        "answered_s": round(first, 3),
        "seconds": round(time.perf_counter() - began, 3),
        "last": json.loads(lines[-1]) if lines else None,
    }


def _concurrently(port: int, bodies: list[bytes]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in bodies]
    barrier = threading.Barrier(len(bodies))

    def one(i: int) -> None:
        barrier.wait()
        results[i] = _upload(port, bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def one_character_rows() -> bytes:
    """A header, then one-character rows up to the body limit (about 520,000 rows)."""
    return HEADER + b"x\n" * ((MAX_BODY - len(HEADER)) // 2)


def ordinary_file(recent: pd.DataFrame, rows: int) -> bytes:
    """``rows`` valid transactions, required columns only (about 60 bytes a row)."""
    lines = [HEADER.decode()]
    for i in range(rows):
        row = as_request(recent.iloc[i % len(recent)])
        lines.append(
            f"u{i},{row['customer_id']},{row['terminal_id']},{row['timestamp']},{row['amount']}\n"
        )
    return "".join(lines).encode()


def _scenario(steady: Steady, name: str, run: Any) -> tuple[Any, dict[str, Any]]:
    rss_before = steady.server.rss_mb()
    mark = len(steady.rss)
    base_end = time.perf_counter()
    baseline = Steady.stats(steady.between(base_end - 1.5, base_end))
    began = time.perf_counter()
    outcome = run()
    ended = time.perf_counter()
    time.sleep(0.3)  # the request in flight when the upload ended
    during = steady.between(began, ended)
    figures = {
        "scenario": name,
        "seconds": round(ended - began, 2),
        "baseline": baseline,
        "during": Steady.stats(during),
        "throughput_ratio": round(len(during) / (ended - began) / (baseline["requests"] / 1.5), 2),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(max(steady.rss[mark:], default=rss_before), 1),
        "uploads": outcome,
    }
    print(json.dumps(figures))
    time.sleep(1.6)  # a fresh baseline for the next scenario
    return outcome, figures


def test_uploads_cannot_stall_scoring_or_pass_the_guard(
    steady: Steady, recent: pd.DataFrame
) -> None:
    port = steady.server.port
    tiny = one_character_rows()
    ordinary = ordinary_file(recent, ROWS)
    assert len(tiny) <= MAX_BODY and len(ordinary) <= MAX_BODY

    # (a) A body-limit file of one-character rows: refused by the row limit, quickly.
    (result,), a = _scenario(
        steady, "one 1 MiB file of one-character rows", lambda: [_upload(port, tiny)]
    )
    assert result["status"] == 413 and result["seconds"] < 5
    assert a["during"]["p99_ms"] < 250 and a["during"]["max_ms"] < 1_000
    assert a["rss_peak_mb"] - a["rss_before_mb"] < 60

    # (b) Three at once: one is scored, the other two get 429 at once (body unread).
    results, b = _scenario(
        steady,
        f"three concurrent {ROWS:,}-row uploads",
        lambda: _concurrently(port, [ordinary] * 3),
    )
    assert sorted(r["status"] for r in results) == [200, 429, 429]
    refused = [r for r in results if r["status"] == 429]
    assert all(r["retry_after"] and r["answered_s"] < 1.0 for r in refused)
    (scored,) = [r for r in results if r["status"] == 200]
    assert scored["last"]["event"] == "done" and scored["last"]["scored"] == ROWS
    assert b["during"]["p99_ms"] < 250 and b["during"]["max_ms"] < 1_000
    assert b["rss_peak_mb"] - b["rss_before_mb"] < 100

    # (c) Two ordinary files back to back: live scoring keeps most of its throughput.
    _, c = _scenario(
        steady,
        f"two {ROWS:,}-row files back to back",
        lambda: [_upload(port, ordinary), _upload(port, ordinary)],
    )
    assert c["during"]["p99_ms"] < 250 and c["during"]["max_ms"] < 1_000
    assert c["throughput_ratio"] > 0.3
    assert steady.failures == 0
