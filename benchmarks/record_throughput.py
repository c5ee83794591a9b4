"""The system of record's write throughput under the API's load (issue 26).

    python -m benchmarks.record_throughput [--seconds 30] [--connections 16]
        [--batch-size 1000] [--out benchmarks/record_throughput.json]

1. The store alone (:mod:`benchmarks.record_store`): ``write_decisions`` in batches of
   100, 1,000 and 5,000 rows into PostgreSQL and into the embedded SQLite default.
2. The service (``python -m app``, pinned to core 0, the generator on core 1, PostgreSQL
   on either) driven at saturation, closed loop, on ``/v1/predict`` then on
   ``/v1/predict/batch`` (on at most 2 connections, the batches admitted at once), every
   request with new transaction ids: acknowledged scores/s;
   the rows arriving in the system of record (``SELECT count(*)``, polled) and the spool
   (``/readyz``'s ``system_of_record.spooled``) over time; the lag from the end of the
   load until every acknowledged row is in the database. Then the same with the embedded
   SQLite record, for the latency beside PostgreSQL's: the database write is off the
   request's critical path (:mod:`app.services.record_shipper`).

The record goes to ``--out`` and its section into BENCHMARKS.md
(:func:`benchmarks.record_report.update_benchmarks`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks import loadgen
from benchmarks.harness import (
    HOST,
    compile_service,
    generator_gc_paused,
    machine,
    pin,
    request_bodies,
    service_env,
    start_service,
    unpin,
)
from benchmarks.http_client import encode
from benchmarks.postgres_server import PostgresServer
from benchmarks.record_report import update_benchmarks
from benchmarks.record_store import Sampler, store_rates
from benchmarks.records import add_workspace_arguments
from benchmarks.server import free_port
from system_of_record.store import RecordStore, open_store

OUT = Path("benchmarks/record_throughput.json")
STORE_BATCHES = (100, 1_000, 5_000)


@dataclass
class Workload:
    """What every phase shares: the service, the requests' templates, the load."""

    python: Path
    bundle: Path
    feature_repo: Path
    bodies: list[dict[str, Any]]
    seconds: float
    connections: int
    batch_size: int
    state: Path
    pin: bool = True
    lag_timeout_s: float = 300.0
    extra_env: dict[str, str] = field(default_factory=dict)


def _requests(port: int, work: Workload, prefix: str, size: int) -> Iterator[bytes]:
    """Requests with never-seen transaction ids: singles (``size`` 0) or batches."""
    ids = itertools.count()
    templates = itertools.cycle(work.bodies)
    authority = f"{HOST}:{port}"

    def body() -> dict[str, Any]:
        return {**next(templates), "transaction_id": f"{prefix}-{next(ids)}"}

    while True:
        if size == 0:
            yield encode("POST", "/v1/predict", authority, orjson.dumps(body()))
        else:
            batch = {"transactions": [body() for _ in range(size)]}
            yield encode("POST", "/v1/predict/batch", authority, orjson.dumps(batch))


def phase(work: Workload, port: int, store: RecordStore, endpoint: str) -> dict[str, Any]:
    """One closed-loop run on ``endpoint`` and the wait until its rows are all on record."""
    size = work.batch_size if endpoint == "batch" else 0
    # batches beyond ADMISSION_BATCH_LIMIT (2) at once would be shed (503)
    connections = min(work.connections, 2) if size else work.connections
    requests = _requests(port, work, f"{endpoint}-{time.time_ns()}", size)
    sampler = Sampler(store, port)
    _, start_rows, start_spool = sampler.sample()
    settle_by = time.perf_counter() + work.lag_timeout_s
    while start_spool > 0:  # the warm-up's or the last phase's rows first
        if time.perf_counter() > settle_by:
            raise RuntimeError(f"{start_spool} decisions still spooled before the {endpoint} run")
        time.sleep(0.05)
        _, start_rows, start_spool = sampler.sample()
    sampler.samples.clear()
    sampler.began = time.perf_counter()
    sampler.start()
    with generator_gc_paused():
        run = asyncio.run(loadgen.closed_loop(HOST, port, requests, connections, work.seconds))
    load_end = time.perf_counter() - sampler.began
    acknowledged = run.count * max(size, 1)
    _, rows, spool = sampler.sample()
    at_end = rows - start_rows, spool
    while rows - start_rows < acknowledged or spool > 0:
        if time.perf_counter() - sampler.began - load_end > work.lag_timeout_s:
            break
        time.sleep(0.05)
        _, rows, spool = sampler.sample()
    lag = time.perf_counter() - sampler.began - load_end
    sampler.done.set()
    sampler.join()
    arrived = rows - start_rows
    return {
        "endpoint": "/v1/predict" if size == 0 else f"/v1/predict/batch ({size:,} per request)",
        "connections": connections,
        "requests": run.summary(),
        "acknowledged_rows": acknowledged,
        "scores_per_s": round(acknowledged / run.seconds, 1),
        "rows_arrived_during_load": at_end[0],
        "rows_per_s_during_load": round(at_end[0] / run.seconds, 1),
        "spool_at_start": start_spool,
        "spool_at_load_end": at_end[1],
        "spool_max": max(s for _, _, s in sampler.samples),
        "lag_s": round(lag, 3),
        "rows_arrived": arrived,
        "rows_per_s_load_to_drained": round(arrived / (run.seconds + lag), 1),
        "complete": arrived == acknowledged,
        # (seconds since the phase began, rows on record since, decisions spooled)
        "timeline": [(t, n - start_rows, s) for t, n, s in sampler.samples],
    }


def api_load(
    work: Workload, name: str, record_env: dict[str, str], store: RecordStore
) -> dict[str, Any]:
    """The service with its system of record at ``record_env`` (empty: the embedded
    default), warmed up, then one phase per endpoint."""
    port = free_port()
    state = work.state / name
    env = service_env(port, state) | {
        "BUNDLE_URI": str(work.bundle),
        "FEATURE_REPO": str(work.feature_repo),
        **record_env,
        **work.extra_env,
    }
    server = start_service(work.python, port, env, {0} if work.pin else None, state / "app.log")
    pin({1} if work.pin else set())
    try:
        warm = _requests(port, work, f"warm-{time.time_ns()}", 0)
        asyncio.run(loadgen.closed_loop(HOST, port, warm, 2, min(work.seconds, 2.0)))
        out = {endpoint: phase(work, port, store, endpoint) for endpoint in ("predict", "batch")}
    finally:
        unpin()
        server.stop()
        store.close()
    return {"target": store.target.describe(), **out}


def run(
    work: Workload, postgres: PostgresServer, store_rows: int, trials: int = 3
) -> dict[str, Any]:
    """Every measurement against the running ``postgres`` (a fresh database each)."""
    database = postgres.url.rsplit("/", 1)[0]
    urls = {}
    for name in ("fraud_store", "fraud_api"):
        postgres.psql(f"CREATE DATABASE {name} OWNER fraud_app")
        urls[name] = f"{database}/{name}"
    password = postgres.password_file
    store = {
        "postgresql": store_rates(urls["fraud_store"], password, STORE_BATCHES, store_rows, trials),
        "sqlite": store_rates(
            f"sqlite:///{work.state / 'store.sqlite'}", None, STORE_BATCHES, store_rows, trials
        ),
    }
    compile_service(work.python)
    record = {"RECORD_URL": urls["fraud_api"], "RECORD_PASSWORD_FILE": str(password)}
    api = {
        "postgresql": api_load(work, "postgresql", record, open_store(urls["fraud_api"], password)),
        "sqlite": api_load(
            work, "sqlite", {}, open_store(f"sqlite:///{work.state / 'sqlite' / 'record.sqlite'}")
        ),
    }
    return {
        "settings": {
            "seconds": work.seconds,
            "connections": work.connections,
            "batch_size": work.batch_size,
            "store_rows": store_rows,
            "pinned": work.pin,
            "bundle": str(work.bundle),
            "feature_repo": str(work.feature_repo),
        },
        "store": store,
        "api": api,
    }


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--seconds", type=float, default=30.0, help="load per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1000, help="per batch request")
    parser.add_argument("--store-rows", type=int, default=20_000, help="rows per store trial")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="record-bench-"))
    work = Workload(
        args.serve_python, args.bundle, args.feature_repo,
        request_bodies(args.data, args.transactions), args.seconds, args.connections,
        args.batch_size, state, args.pin,
    )  # fmt: skip
    postgres = PostgresServer(state / "postgres", free_port())
    postgres.init()
    try:
        record = run(work, postgres, args.store_rows)
    finally:
        postgres.remove()
    command = "python -m benchmarks.record_throughput " + " ".join(argv or sys.argv[1:])
    record = {"machine": machine(), "command": command.strip(), **record}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    update_benchmarks(record, args.markdown)
    log(f"wrote {args.out} and {args.markdown}; the services' logs are in {state}")


if __name__ == "__main__":
    main()
