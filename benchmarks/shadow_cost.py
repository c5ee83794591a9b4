"""What the challenger in shadow costs the champion's requests (issue 27).

    python -m benchmarks.shadow_cost [--seconds 15] [--connections 16]
        [--rates 0.5 0.75] [--out benchmarks/shadow_cost.json]

The service (``python -m app``, one worker, pinned to core 0, the load generator on
core 1, as :mod:`benchmarks.record_throughput` runs it) is started twice on the same
bundle: without ``CHALLENGER_URI``, then with ``CHALLENGER_URI`` set to that bundle again
(a real second ensemble scored per answered transaction, by the shadow worker thread in
the same process, on the same core). For each: closed-loop saturation on single
``/v1/predict`` for ``--seconds``, then an open loop at each ``--rates`` share of the
saturation measured WITHOUT the shadow (the same offered load for both), ``--seconds``
each: client-side p50/p95/p99 from the due time and the generator's own lateness (requests
sent more than 1 ms after they were due). With the shadow, ``fraud_shadow_scored_total``
and ``fraud_shadow_dropped_total{reason}`` are read from ``/metrics`` after every run (once
the shadow queue has drained, bounded): how much the challenger kept up with, how much
was shed. The record goes to ``--out`` and its section into BENCHMARKS.md
(:func:`benchmarks.shadow_report.update_benchmarks`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import loadgen
from benchmarks.harness import (
    HOST,
    compile_service,
    generator_gc_paused,
    pin,
    request_bodies,
    service_env,
    start_service,
    unpin,
)
from benchmarks.http_client import encode
from benchmarks.records import add_workspace_arguments, stamped
from benchmarks.server import free_port, metrics_text
from benchmarks.shadow_report import ShadowCounters, shadow_counters, table, update_benchmarks

OUT = Path("benchmarks/shadow_cost.json")
DRAIN_TIMEOUT_S = 10.0


@dataclass
class Workload:
    """What both services share: the interpreter, artifacts, request templates, the load."""

    python: Path
    bundle: Path
    feature_repo: Path
    bodies: list[dict[str, Any]]
    seconds: float
    connections: int
    rates: tuple[float, ...]
    state: Path
    pin: bool = True


def _singles(port: int, work: Workload, prefix: str) -> Iterator[bytes]:
    """``/v1/predict`` requests with never-seen transaction ids (no idempotent replays)."""
    ids = itertools.count()
    templates = itertools.cycle(work.bodies)
    authority = f"{HOST}:{port}"
    while True:
        body = {**next(templates), "transaction_id": f"{prefix}-{next(ids)}"}
        yield encode("POST", "/v1/predict", authority, orjson.dumps(body))


def _settled(port: int) -> ShadowCounters:
    """The shadow counters once nothing waits for the challenger (or after the timeout)."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    counters = shadow_counters(metrics_text(port))
    while counters.queued > 0 and time.perf_counter() < deadline:
        time.sleep(0.05)
        counters = shadow_counters(metrics_text(port))
    return counters


def _measured(
    port: int, run: loadgen.Run, before: ShadowCounters, shadow: bool, **extra: Any
) -> tuple[dict[str, Any], ShadowCounters]:
    queued_at_end = shadow_counters(metrics_text(port)).queued
    after = _settled(port)
    out: dict[str, Any] = {**extra, "requests": run.summary()}
    sent = run.count + run.errors
    out["late_share"] = round(run.late / sent, 4) if sent else 0.0
    if shadow:
        out["shadow"] = after.minus(before).as_dict() | {"queued_at_load_end": queued_at_end}
    return out, after


def variant(work: Workload, name: str, challenger: bool, rates: list[float]) -> dict[str, Any]:
    """One service: warm-up, saturation, then an open loop at each of ``rates`` req/s
    (``rates`` empty: at the shares of this variant's own saturation)."""
    port = free_port()
    state = work.state / name
    env = service_env(port, state) | {
        "BUNDLE_URI": str(work.bundle),
        "FEATURE_REPO": str(work.feature_repo),
    }
    if challenger:
        env["CHALLENGER_URI"] = str(work.bundle)
    server = start_service(work.python, port, env, {0} if work.pin else None, state / "app.log")
    pin({1} if work.pin else set())
    try:
        warm = _singles(port, work, f"warm-{name}")
        asyncio.run(loadgen.closed_loop(HOST, port, warm, 2, min(work.seconds, 2.0)))
        counters = _settled(port)
        with generator_gc_paused():
            run = asyncio.run(
                loadgen.closed_loop(
                    HOST, port, _singles(port, work, f"sat-{name}"), work.connections, work.seconds
                )
            )
        saturation, counters = _measured(port, run, counters, challenger)
        offered = rates or [share * run.throughput for share in work.rates]
        open_runs = []
        for share, rate in zip(work.rates, offered, strict=True):
            requests = _singles(port, work, f"open{share * 100:.0f}-{name}")
            with generator_gc_paused():
                run = asyncio.run(loadgen.open_loop(HOST, port, requests, rate, work.seconds))
            measured, counters = _measured(
                port, run, counters, challenger, share=share, offered_rps=round(rate, 1)
            )
            open_runs.append(measured)
    finally:
        unpin()
        server.stop()
    return {"challenger": challenger, "saturation": saturation, "open_loop": open_runs}


def run(work: Workload) -> dict[str, Any]:
    """Both variants; the shadow run's open loops at the no-shadow saturation's shares."""
    compile_service(work.python)
    base = variant(work, "no-shadow", challenger=False, rates=[])
    rates = [r["offered_rps"] for r in base["open_loop"]]
    shadow = variant(work, "shadow", challenger=True, rates=rates)
    return {
        "settings": {
            "seconds": work.seconds,
            "connections": work.connections,
            "rates": list(work.rates),
            "pinned": work.pin,
            "bundle": str(work.bundle),
            "feature_repo": str(work.feature_repo),
        },
        "variants": {"no_shadow": base, "shadow": shadow},
    }


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--seconds", type=float, default=15.0, help="load per run")
    parser.add_argument("--connections", type=int, default=16, help="closed loop")
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[0.5, 0.75], help="open-loop shares"
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    work = Workload(
        args.serve_python, args.bundle, args.feature_repo,
        request_bodies(args.data, args.transactions), args.seconds, args.connections,
        tuple(args.rates), state, args.pin,
    )  # fmt: skip
    record = stamped("benchmarks.shadow_cost", argv, lambda: run(work))
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    update_benchmarks(record, args.markdown)
    log(table(record))
    log(f"wrote {args.out} and {args.markdown}; the services' logs are in {state}")


if __name__ == "__main__":
    main()
