"""What tracing costs a scored request: the app driven in-process through ASGI.

One process per variant: ``create_app`` with the settings in the environment (the sampler
ratio is ``OTEL_TRACES_SAMPLER_ARG``, the exporter ``OTEL_TRACES_EXPORTER``), its lifespan
run, then ``--requests`` distinct ``POST /v1/predict`` calls one after another through the
whole middleware stack, without sockets or an HTTP server (so the tracing's share of the
time is not diluted by the protocol's). ``--uninstrumented`` removes the FastAPI
instrumentation again, for the baseline. Prints one JSON line: requests/s, p50 and p99 of
the wall time per request, and CPU milliseconds per request. ``--profile FILE`` writes a
cProfile of the timed loop. ``--sink PORT`` instead runs a receiver that answers every
OTLP/HTTP export with 200 (run it as its own process, so its CPU is not the service's).
Used for the "Tracing cost" section of BENCHMARKS.md::

    python -m benchmarks.tracing_cost --sink 4318 &
    OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
        OTEL_TRACES_SAMPLER_ARG=0.01 \
        python -m benchmarks.tracing_cost --bundle B --feature-repo R --rows recent.parquet
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from app.core.config import Settings
from app.main import create_app
from benchmarks.transactions import request_body

TRACING_JSON = Path("benchmarks/tracing.json")


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predict",
        "raw_path": b"/v1/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Any, body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(body), receive, send)
    return status


async def run(app: Any, bodies: list[bytes], warmup: int, profile: Path | None) -> dict[str, Any]:
    async with app.router.lifespan_context(app):
        for body in bodies[:warmup]:
            await _call(app, body)
        gc.collect()
        profiler = cProfile.Profile() if profile else None
        times = []
        cpu, began = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for body in bodies[warmup:]:
            start = time.perf_counter()
            status = await _call(app, body)
            times.append(time.perf_counter() - start)
            assert status == 200, status
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
    ms = np.asarray(times) * 1000
    return {
        "requests": len(times),
        "requests_per_s": round(len(times) / total, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "cpu_ms_per_request": round(cpu * 1000 / len(times), 3),
    }


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


# (label, OTEL_TRACES_SAMPLER_ARG, extra arguments); exported spans go over OTLP/HTTP.
VARIANTS: tuple[tuple[str, str, list[str]], ...] = (
    ("no instrumentation", "0", ["--uninstrumented"]),  # 0: no stage span is a root
    ("sampling 0", "0", []),
    ("sampling 1 %", "0.01", []),
    ("sampling 100 %", "1", []),
)


def compare(args: argparse.Namespace, rounds: int, sink_port: int = 14318) -> dict[str, Any]:
    """Every variant in its own process, the variants interleaved over ``rounds``; every
    run is kept (the section reports the best of the rounds). With ``--old-tree``, also
    the hand-written span middleware this replaced, from a copy of an older tree (``app``,
    ``benchmarks`` with this module, ``fraud_model``, ``feature_repo``)."""
    variants = [(label, ratio, extra, None) for label, ratio, extra in VARIANTS]
    if args.old_tree is not None:
        variants += [
            (f"old middleware, sampling {p}", ratio, [], args.old_tree)
            for p, ratio in (("1 %", "0.01"), ("100 %", "1"))
        ]
    sink = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.tracing_cost", "--sink", str(sink_port)]
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for _ in range(rounds):
            for label, ratio, extra, tree in variants:
                env = os.environ | {
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_EXPORTER": "otlp",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                    "OTEL_TRACES_SAMPLER_ARG": ratio,
                }
                command = [
                    *(sys.executable, "-m", "benchmarks.tracing_cost"),
                    *("--bundle", args.bundle, "--feature-repo", str(args.feature_repo)),
                    *("--rows", str(args.rows), "--state", str(args.state)),
                    *("--requests", str(args.requests), "--warmup", str(args.warmup)),
                    *extra,
                ]
                done = subprocess.run(
                    command,
                    env=env,
                    cwd=tree,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                runs.setdefault(label, []).append(json.loads(done.stdout.splitlines()[-1]))
                print(label, runs[label][-1], file=sys.stderr)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "workspace": args.note,
        "requests": args.requests,
        "rounds": rounds,
        "runs": runs,
    }


def best(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The best of the rounds per figure (as ``timeit`` does): on a shared machine the
    least disturbed run is the closest to the code's own cost."""
    return {
        "requests_per_s": max(r["requests_per_s"] for r in runs),
        **{k: min(r[k] for r in runs) for k in ("p50_ms", "p99_ms", "cpu_ms_per_request")},
    }


def section(record: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md's "Tracing cost" section from ``benchmarks/tracing.json``."""
    variants = {label: best(runs) for label, runs in record["runs"].items()}
    m = record["machine"]
    base = variants["no instrumentation"]["cpu_ms_per_request"]
    out = [
        "## Tracing cost (issue 24)",
        "",
        f"`python -m benchmarks.tracing_cost --compare` ([`{TRACING_JSON}`]({TRACING_JSON})): "
        f"`POST /v1/predict` driven in-process through the whole ASGI stack, one request "
        f"at a time, {record['requests']:,} distinct transactions per run after a warm-up, "
        f"each variant in its own process, interleaved over {record['rounds']} rounds "
        "(best of the rounds per figure); spans exported over OTLP/HTTP to a sink process "
        "on loopback. CPU ms per request (all the process's threads) is the steadiest "
        "figure on a shared machine.",
        "",
        f"Workspace: {record.get('workspace') or 'as given'}. Machine: {m['cpus']} cores "
        f"shared with other work (load average {m['load_average'][0]:.1f} at the end), "
        f"Python {m['python']}."
        + (
            " `old middleware`: the hand-written SERVER-span middleware this replaced"
            " (`--old-tree`, the tree before issue 24)."
            if any(label.startswith("old middleware") for label in variants)
            else ""
        ),
        "",
        "| tracing | req/s | p50 ms | p99 ms | CPU ms per request | CPU vs none |",
        "|---|---|---|---|---|---|",
    ]
    for label, v in variants.items():
        extra = v["cpu_ms_per_request"] / base - 1
        out.append(
            f"| {label} | {v['requests_per_s']:.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} "
            f"| {v['cpu_ms_per_request']:.3f} | {extra:+.0%} |"
        )
    return [*out, ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sink", type=int, help="only run an OTLP/HTTP sink on this port")
    parser.add_argument("--bundle")
    parser.add_argument("--feature-repo", type=Path)
    parser.add_argument("--rows", type=Path, help="transactions (parquet)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--state", type=Path, help="logs' directory (default: a new temporary one)")
    parser.add_argument("--uninstrumented", action="store_true")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--label", default="")
    parser.add_argument("--compare", type=int, metavar="ROUNDS", help="run every variant")
    parser.add_argument("--out", type=Path, default=TRACING_JSON)
    parser.add_argument("--note", default="", help="with --compare: what the workspace is")
    parser.add_argument("--old-tree", type=Path, help="with --compare: the old middleware too")
    args = parser.parse_args(argv)
    if args.sink:
        ThreadingHTTPServer(("127.0.0.1", args.sink), _Sink).serve_forever()
        return
    if args.bundle is None or args.feature_repo is None or args.rows is None:
        parser.error("--bundle, --feature-repo and --rows are required")
    if args.state is None:
        args.state = Path(tempfile.mkdtemp(prefix="tracing-cost-"))
    args.state.mkdir(parents=True, exist_ok=True)
    if args.compare:
        record = compare(args, args.compare)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print("\n".join(section(record)))
        return
    settings = Settings(
        bundle_uri=args.bundle,
        feature_repo=args.feature_repo,
        label_log=args.state / "labels.sqlite",
        audit_log=args.state / "predictions.sqlite",
        log_level="WARNING",
        velocity_push=False,
    )
    app = create_app(settings)
    if args.uninstrumented:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.uninstrument_app(app)
    rows = list(pd.read_parquet(args.rows).itertuples())
    n = args.warmup + args.requests
    bodies = [
        orjson.dumps(request_body(rows[i % len(rows)], transaction_id=f"bench-{i}"))
        for i in range(n)
    ]
    result = asyncio.run(run(app, bodies, args.warmup, args.profile))
    print(json.dumps({"label": args.label, **result}))


if __name__ == "__main__":
    main()
