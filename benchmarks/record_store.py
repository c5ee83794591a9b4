"""The system of record's write rate alone, the rows the benchmark writes, and the sampler
that watches rows arrive while the service is under load.

``store_rates`` times :meth:`RecordStore.write_decisions` in batches of several sizes
(each batch one transaction, as the service's shipper writes them), with fresh
transaction ids so no row is an idempotent no-op: rows per second, median of the trials.
Used by :mod:`benchmarks.record_throughput` against PostgreSQL and the embedded SQLite.
"""

from __future__ import annotations

import http.client
import itertools
import json
import statistics
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from system_of_record.rows import DecisionRow
from system_of_record.store import RecordStore, open_store

_ids = itertools.count()
SAMPLE_SECONDS = 0.25


def decision_rows(n: int, prefix: str) -> list[DecisionRow]:
    """``n`` scored transactions as the shipper hands them over, with unique ids."""
    now = datetime.now(UTC)
    rows = []
    for _ in range(n):
        i = next(_ids)
        rows.append(
            DecisionRow(
                f"{prefix}-{i}",
                f"C{i % 5000:05d}",
                f"T{i % 2000:05d}",
                now - timedelta(seconds=i % 86_400),
                12.5 + i % 300,
                "grocery",
                "card_present",
                "chip",
                i % 50 == 0,
                3.2,
                "fraud_scoring_v1",
                "bench-model",
                0.01,
                "low",
                "approve",
                "model",
                "",
                f"req-{i}",
                now,
            )
        )
    return rows


def store_rates(
    url: str,
    password_file: Path | None,
    batch_sizes: Sequence[int],
    rows: int,
    trials: int = 3,
) -> dict[str, Any]:
    """For each batch size: ``rows`` new decisions written in batches of that size,
    ``trials`` times; rows per second of each trial and their median. The rows written
    are checked against the table's count."""
    store = open_store(url, password_file)
    try:
        before = store.counts()["decisions"]
        out: dict[str, Any] = {}
        written = 0
        for size in batch_sizes:
            rates = []
            for trial in range(trials):
                batches = [
                    decision_rows(min(size, rows - start), f"store-{size}-{trial}")
                    for start in range(0, rows, size)
                ]
                began = time.perf_counter()
                for batch in batches:
                    store.write_decisions(batch)
                rates.append(rows / (time.perf_counter() - began))
                written += rows
            out[str(size)] = {
                "rows": rows,
                "rows_per_s": round(statistics.median(rates), 1),
                "trials_rows_per_s": [round(rate, 1) for rate in rates],
            }
        arrived = store.counts()["decisions"] - before
        if arrived != written:
            raise RuntimeError(f"wrote {written} decisions, {arrived} are in the table")
        return {"target": store.target.describe(), "trials": trials, "batches": out}
    finally:
        store.close()


def spooled(port: int) -> int:
    """Decisions waiting in the service's spool (``/readyz``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        ready = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return int(ready["system_of_record"]["spooled"])


class Sampler(threading.Thread):
    """Polls the database's decision count and the spool every ``SAMPLE_SECONDS``."""

    def __init__(self, store: RecordStore, port: int) -> None:
        super().__init__(name="record-sampler", daemon=True)
        self.store, self.port = store, port
        self.began = time.perf_counter()
        self.samples: list[tuple[float, int, int]] = []
        self.done = threading.Event()
        self._lock = threading.Lock()  # the store holds one connection

    def sample(self) -> tuple[float, int, int]:
        with self._lock:
            now = time.perf_counter() - self.began
            point = (round(now, 3), self.store.counts()["decisions"], spooled(self.port))
            self.samples.append(point)
        return point

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            self.sample()
