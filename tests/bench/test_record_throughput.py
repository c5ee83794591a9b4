"""The system-of-record benchmark on a tiny budget: its record's structure, and every
acknowledged score on record in PostgreSQL and in the embedded SQLite (no speed claim)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import request_bodies
from benchmarks.postgres_server import PostgresServer
from benchmarks.record_report import TITLE, section, update_benchmarks
from benchmarks.record_throughput import STORE_BATCHES, Workload, run


def tiny_run(
    bundle: Path, repo: Path, data: Path, postgres: PostgresServer, state: Path
) -> dict[str, Any]:
    """The whole benchmark on a budget of seconds, recorded as the command records it."""
    work = Workload(
        python=Path(sys.executable),
        bundle=bundle,
        feature_repo=repo,
        bodies=request_bodies(data / "v1" / "transactions.parquet", 200),
        seconds=0.5,
        connections=4,
        batch_size=20,
        state=state,
        pin=False,
        lag_timeout_s=60,
    )
    result = run(work, postgres, store_rows=250, trials=2)
    machine = {"date": "today", "cores": 2, "cpu": "test"}
    return {"machine": machine, "command": "python -m benchmarks.record_throughput", **result}


@pytest.mark.slow
def test_the_benchmark_records_every_acknowledged_score_in_the_database(
    tiny_bundle: Path,
    feast_repo: Path,
    tiny_data: Path,
    postgres_factory: Callable[[], PostgresServer],
    tmp_path: Path,
) -> None:
    record = tiny_run(tiny_bundle, feast_repo, tiny_data, postgres_factory(), tmp_path / "state")
    store_alone(record)
    under_load(record)
    markdown(record, tmp_path)


def store_alone(record: dict[str, Any]) -> None:
    for database in ("postgresql", "sqlite"):
        store = record["store"][database]
        assert store["trials"] == 2
        assert list(store["batches"]) == [str(size) for size in STORE_BATCHES]
        for figures in store["batches"].values():
            assert figures["rows"] == 250
            assert len(figures["trials_rows_per_s"]) == 2
            assert figures["rows_per_s"] > 0
    assert record["store"]["postgresql"]["target"].startswith("postgresql://fraud_app@127.0.0.1")


def under_load(record: dict[str, Any]) -> None:
    for database in ("postgresql", "sqlite"):
        api = record["api"][database]
        assert api["target"].startswith(database)
        for endpoint, per_request in (("predict", 1), ("batch", 20)):
            phase = api[endpoint]
            requests = phase["requests"]
            assert requests["requests"] > 0 and requests["errors"] == 0
            assert phase["acknowledged_rows"] == requests["requests"] * per_request
            assert phase["rows_arrived"] == phase["acknowledged_rows"]
            assert phase["complete"] is True
            assert phase["spool_at_start"] == 0
            # the last sample: every acknowledged row on record, nothing spooled
            assert tuple(phase["timeline"][-1][1:]) == (phase["acknowledged_rows"], 0)
            assert phase["rows_arrived_during_load"] <= phase["acknowledged_rows"]
            assert phase["spool_max"] >= phase["spool_at_load_end"] >= 0
            assert phase["lag_s"] >= 0 and requests["p99_ms"] >= requests["p50_ms"] > 0


def markdown(record: dict[str, Any], tmp_path: Path) -> None:
    """The section: both databases, both endpoints; it replaces its own, keeps the rest."""
    lines = section(record)
    assert lines[0] == TITLE
    rows = [line for line in lines if line.startswith(("| PostgreSQL |", "| embedded SQLite |"))]
    assert len(rows) == 4
    assert "/v1/predict/batch (20 per request)" in rows[1]
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n{TITLE}\n\nold figures\n\n## Tracing cost\n\nkept\n")
    update_benchmarks(record, path)
    update_benchmarks(record, path)
    text = path.read_text()
    assert text.count(TITLE) == 1 and "old figures" not in text
    assert text.startswith("# Benchmarks\n\n" + TITLE)
    assert text.endswith("## Tracing cost\n\nkept\n")
