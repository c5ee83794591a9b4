"""``python -m benchmarks`` (``make bench``): measure the service and write BENCHMARKS.md.

Sections, in order:

1. ``inprocess``: the per-request stage breakdown (:mod:`benchmarks.inprocess`).
2. ``service``: the real service (``python -m app``, one uvicorn worker pinned to core 0,
   production settings: INFO logs, tracing on) driven over loopback HTTP by
   :mod:`benchmarks.loadgen` on core 1: cold start and memory, unloaded latency,
   saturation, open-loop latency at 25/50/75 % of saturation, and the batch endpoint.
3. ``naive``: the naive baseline (:mod:`benchmarks.naive_app`) on the same core, the same
   requests, in the same run; its probabilities are checked against the service's.
4. ``training``: ``training.external`` on a 300,000-row file, and the training pipeline's
   stages (``--pipeline scratch`` reruns them from scratch in a copy of the workspace;
   ``auto`` times whatever ``dvc repro`` has to do in the workspace).
5. ``protocol``: the service on the edge protocol (``python -m app``) against the stack
   it replaced (httptools), alike in all else (:mod:`benchmarks.protocols`). ``--only
   protocol`` measures this alone and merges it into the existing results.

Results go to ``benchmarks/results.json`` and ``BENCHMARKS.md``. Every load is bounded in
time and count and every server listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from benchmarks import loadgen
from benchmarks.harness import (
    HOST,
    add_service_arguments,
    compile_service,
    generator_gc_paused,
    machine,
    pin,
    request_bodies,
    service_env,
    start_service,
    unpin,
)
from benchmarks.protocols import run_protocols
from benchmarks.report import read_soak, write_markdown
from benchmarks.server import Server, start

STAGES = ("data", "features", "materialize", "training_set", "train", "evaluate")


def _post(port: int, path: str, body: bytes) -> dict[str, Any]:
    import http.client

    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    if answer.status != 200:
        raise RuntimeError(f"POST {path}: {answer.status} {data[:200]!r}")
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _rate_levels(saturation: float) -> list[tuple[int, float]]:
    return [(share, saturation * share / 100) for share in (25, 50, 75)]


async def measure_service(
    server: Server, singles: list[bytes], batches: dict[int, list[bytes]], seconds: float
) -> dict[str, Any]:
    port = server.port
    predict = loadgen.encode_requests(HOST, port, "/v1/predict", singles)
    health = loadgen.encode_requests(HOST, port, "/healthz", [b""], method="GET")
    out: dict[str, Any] = {"ready_seconds": round(server.ready_seconds, 3)}
    out["rss_ready_mb"] = round(server.rss_mb(), 1)
    await loadgen.closed_loop(HOST, port, predict, 8, min(seconds, 3.0))  # warm-up
    out["unloaded"] = (await loadgen.one_by_one(HOST, port, predict, int(200 * seconds))).summary()
    saturation = await loadgen.closed_loop(HOST, port, predict, 32, seconds)
    out["saturation"] = {"connections": 32, **saturation.summary()}
    out["open_loop"] = []
    for share, rate in _rate_levels(saturation.throughput):
        run = await loadgen.open_loop(HOST, port, predict, rate, seconds)
        out["open_loop"].append({"share": share, "offered_rps": round(rate, 1), **run.summary()})
    out["batch"] = []
    for size, bodies in batches.items():
        requests = loadgen.encode_requests(HOST, port, "/v1/predict/batch", bodies)
        run = await loadgen.closed_loop(HOST, port, requests, 2, seconds)
        out["batch"].append(
            {"size": size, "tx_per_second": round(run.throughput * size, 0), **run.summary()}
        )
    out["rss_after_load_mb"] = round(server.rss_mb(), 1)
    health_run = await loadgen.closed_loop(HOST, port, health, 32, min(seconds, 5.0))
    out["healthz_rps"] = round(health_run.throughput, 0)
    return out


async def generator_ceiling(port: int, singles: list[bytes], seconds: float) -> float:
    """The load generator against a server that does nothing: its own limit."""
    requests = loadgen.encode_requests(HOST, port, "/v1/predict", singles)
    return (await loadgen.closed_loop(HOST, port, requests, 32, seconds)).throughput


async def measure_naive(server: Server, singles: list[bytes], seconds: float) -> dict[str, Any]:
    port = server.port
    predict = loadgen.encode_requests(HOST, port, "/v1/predict", singles)
    out: dict[str, Any] = {
        "ready_seconds": round(server.ready_seconds, 3),
        "rss_ready_mb": round(server.rss_mb(), 1),
    }
    await loadgen.closed_loop(HOST, port, predict, 2, min(seconds, 3.0))  # warm-up
    out["unloaded"] = (await loadgen.one_by_one(HOST, port, predict, int(10 * seconds))).summary()
    run = await loadgen.closed_loop(HOST, port, predict, 8, seconds)
    out["saturation"] = {"connections": 8, **run.summary()}
    out["rss_after_load_mb"] = round(server.rss_mb(), 1)
    return out


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_servers(args: argparse.Namespace, results: dict[str, Any]) -> None:
    bodies = request_bodies(args.data, args.transactions)
    singles = [orjson.dumps(b) for b in bodies]
    batches = {
        size: [
            orjson.dumps({"transactions": bodies[i : i + size]})
            for i in range(0, len(bodies) - size + 1, size)
        ]
        for size in (100, 1000)
    }
    server_cores = {0} if args.pin else None
    pin({1} if args.pin else set())
    compile_service(args.serve_python)
    env = service_env(args.port, args.out_dir)
    colds = []
    for i in range(args.cold_starts):
        server = start_service(
            args.serve_python, args.port, env, server_cores, args.out_dir / f"service-{i}.log"
        )
        colds.append((server.ready_seconds, server.rss_mb()))
        if i < args.cold_starts - 1:
            server.stop()
    try:
        with generator_gc_paused():
            service = asyncio.run(measure_service(server, singles, batches, args.seconds))
        reference = [_post(args.port, "/v1/predict", body) for body in singles[: args.parity]]
    finally:
        server.stop()
    static = start(
        _python("-m", "benchmarks.static_server", str(args.port + 2)),
        args.port + 2,
        {},
        server_cores,
        args.out_dir / "static.log",
        ready_path="/",
    )
    try:
        ceiling = asyncio.run(generator_ceiling(args.port + 2, singles, min(args.seconds, 5.0)))
        service["generator_ceiling_rps"] = round(ceiling, 0)
    finally:
        static.stop()
    service["cold_starts"] = [
        {"ready_seconds": round(s, 3), "rss_ready_mb": round(m, 1)} for s, m in colds
    ]
    results["service"] = service
    if args.naive:
        naive_env = {"NAIVE_BUNDLE": str(args.bundle), "NAIVE_FEATURE_REPO": "feature_repo"}
        command = _python(
            "-m", "uvicorn", "benchmarks.naive_app:create_app", "--factory",
            "--host", HOST, "--port", str(args.port + 1), "--log-level", "warning",
        )  # fmt: skip
        naive = start(command, args.port + 1, naive_env, server_cores, args.out_dir / "naive.log")
        try:
            with generator_gc_paused():
                baseline = asyncio.run(measure_naive(naive, singles, args.seconds))
            answers = [_post(args.port + 1, "/v1/predict", body) for body in singles[: args.parity]]
        finally:
            naive.stop()
        baseline["parity_max_abs_diff"] = max(
            abs(a["fraud_probability"] - b["fraud_probability"])
            for a, b in zip(answers, reference, strict=True)
        )
        baseline["parity_checked"] = len(answers)
        results["naive"] = baseline
    unpin()


def run_protocol(args: argparse.Namespace, results: dict[str, Any], own_run: bool) -> None:
    """The edge protocol against httptools: server on core 0, generator on core 1."""
    from app.core.config import Settings

    singles = [orjson.dumps(b) for b in request_bodies(args.data, args.transactions)]
    pin({1} if args.pin else set())
    compile_service(args.serve_python)
    protocol = run_protocols(
        args.serve_python,
        args.port,
        service_env(args.port, args.out_dir),
        {0} if args.pin else None,
        singles,
        args.seconds,
        args.protocol_rates,
        args.out_dir,
    )
    unpin()
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    results["protocol"] = {
        **protocol,
        "machine": machine(),
        "command": command.strip(),
        # what the service serves: its settings, read from the same environment
        "bundle": str(Settings().bundle_uri),
        "feature_repo": str(Settings().feature_repo),
        "own_run": own_run,
    }


def handbook_file(source: Path, rows: int, path: Path) -> Path:
    """The first ``rows`` simulated transactions in the Fraud Detection Handbook's schema."""
    frame = pd.read_parquet(source).head(rows)
    pd.DataFrame(
        {
            "TRANSACTION_ID": range(len(frame)),
            "TX_DATETIME": frame.timestamp.dt.tz_localize(None),
            "CUSTOMER_ID": frame.customer_id,
            "TERMINAL_ID": frame.terminal_id,
            "TX_AMOUNT": frame.amount,
            "TX_FRAUD": frame.is_fraud.astype(int),
            "TX_FRAUD_SCENARIO": frame.fraud_scenario,
        }
    ).to_csv(path, index=False)
    return path


def _timed(command: list[str], cwd: Path, log: Path) -> float:
    began = time.perf_counter()
    with log.open("wb") as out:
        subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return round(time.perf_counter() - began, 1)


def run_training(args: argparse.Namespace, results: dict[str, Any]) -> None:
    training: dict[str, Any] = {}
    if args.external_rows > 0:
        csv = handbook_file(
            Path("data/v0/transactions.parquet"),
            args.external_rows,
            args.out_dir / "handbook.csv",
        )
        metrics = args.out_dir / "external_handbook.json"
        seconds = _timed(
            _python("-m", "training.external", "--schema", "handbook", "--data", str(csv),
                    "--out", str(metrics)),
            Path.cwd(),
            args.out_dir / "external.log",
        )  # fmt: skip
        report = json.loads(metrics.read_text())
        training["external"] = {
            "rows": args.external_rows,
            "seconds": seconds,
            "phase_seconds": report["phase_seconds"],
            "test_rows": report["n_test"],
            "test_auprc": round(report["auprc"], 4),
        }
    if args.pipeline != "skip":
        training["pipeline"] = pipeline_times(args)
    results["training"] = training


def pipeline_times(args: argparse.Namespace) -> dict[str, Any]:
    """Wall time of each training stage, run one by one with ``dvc repro --single-item``."""
    dvc = str(Path(sys.executable).with_name("dvc"))
    workspace = Path.cwd()
    if args.pipeline == "scratch":
        workspace = args.out_dir / "pipeline"
        subprocess.run(["rm", "-rf", str(workspace)], check=True)
        workspace.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "HEAD"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(workspace)], input=archive.stdout, check=True)
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
        cache = str(Path(".dvc/cache").resolve())
        subprocess.run([dvc, "cache", "dir", "--local", cache], cwd=workspace, check=True)
        subprocess.run([dvc, "checkout", "-q", "data.dvc"], cwd=workspace, check=True)
    force = ["--force", "--no-run-cache"] if args.pipeline == "scratch" else []
    stages = []
    for stage in STAGES:
        log = args.out_dir / f"pipeline-{stage}.log"
        try:
            seconds = _timed([dvc, "repro", *force, "--single-item", stage], workspace, log)
        except subprocess.CalledProcessError:
            return {"mode": args.pipeline, "stages": stages, "failed": stage, "log": str(log)}
        ran = "Running stage" in log.read_text()
        stages.append({"stage": stage, "seconds": seconds, "ran": ran})
    return {"mode": args.pipeline, "stages": stages}


def run_tracing(args: argparse.Namespace) -> None:
    """What tracing costs a scored request at sampling 0, 1 % and 100 % against no
    instrumentation, on this workspace: ``benchmarks/tracing.json`` and its BENCHMARKS.md
    section (:mod:`benchmarks.tracing_cost`)."""
    from app.core.config import Settings
    from benchmarks.tracing_cost import TRACING_JSON, compare

    settings = Settings()
    tracing = argparse.Namespace(
        bundle=str(settings.bundle_uri),
        feature_repo=settings.feature_repo,
        rows=args.data,
        state=args.out_dir / "tracing-state",
        requests=args.tracing_requests,
        warmup=300,
        old_tree=None,
        note=f"make bench: {settings.bundle_uri}, {settings.feature_repo}, {args.data}",
    )
    tracing.state.mkdir(parents=True, exist_ok=True)
    TRACING_JSON.write_text(json.dumps(compare(tracing, rounds=3), indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load level")
    parser.add_argument("--inprocess", type=int, default=2000, help="transactions timed")
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--parity", type=int, default=50, help="answers compared with naive")
    add_service_arguments(parser, port=8300, target="bench")
    parser.add_argument("--external-rows", type=int, default=300_000)
    parser.add_argument("--pipeline", choices=("auto", "scratch", "skip"), default="auto")
    parser.add_argument("--no-naive", dest="naive", action="store_false")
    parser.add_argument("--no-protocol", dest="protocol", action="store_false")
    parser.add_argument("--no-tracing", dest="tracing", action="store_false")
    parser.add_argument(
        "--tracing-requests", type=int, default=3000, help="requests per tracing-cost run"
    )
    parser.add_argument(
        "--protocol-rates",
        type=float,
        nargs="+",
        default=[],
        help="open-loop req/s for both stacks (default: 25/50/75 %% of the edge's saturation)",
    )
    parser.add_argument(
        "--only",
        choices=("protocol", "tracing"),
        help="measure this section alone; merged into the existing --results",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("build/bench"))
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    args.pin = (os.cpu_count() or 1) >= 2
    args.out_dir = args.out_dir.resolve()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.only == "tracing":
        run_tracing(args)
        results_so_far = json.loads(args.results.read_text())
        write_markdown(results_so_far, args.markdown, read_soak())
        print(f"wrote the tracing cost to {args.markdown}")
        return
    if args.only == "protocol":
        merged: dict[str, Any] = (
            json.loads(args.results.read_text()) if args.results.is_file() else {}
        )
        run_protocol(args, merged, own_run=True)
        merged.setdefault("machine", merged["protocol"]["machine"])
        merged.setdefault("settings", {
            "seconds_per_level": args.seconds, "distinct_requests": args.transactions,
            "pinned": args.pin,
        })  # fmt: skip
        args.results.write_text(json.dumps(merged, indent=2) + "\n")
        write_markdown(merged, args.markdown, read_soak())
        print(f"wrote the protocol comparison to {args.markdown} and {args.results}")
        return
    began = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "settings": {
        "seconds_per_level": args.seconds, "distinct_requests": args.transactions,
        "pinned": args.pin,
    }}  # fmt: skip
    if args.pipeline == "auto":  # the workspace must be up to date before serving from it
        results["training"] = {"pipeline": pipeline_times(args)}
        args.pipeline = "skip"
    from app.core.config import Settings
    from benchmarks.inprocess import breakdown

    bodies = [orjson.dumps(b) for b in request_bodies(args.data, args.inprocess + 200)]
    pin({0} if args.pin else set())
    results["inprocess"] = breakdown(Settings(log_level="WARNING"), bodies)
    unpin()
    run_servers(args, results)
    if args.protocol:
        run_protocol(args, results, own_run=False)
    if args.tracing:
        run_tracing(args)
    pipeline = results.get("training", {}).get("pipeline")
    run_training(args, results)
    if pipeline is not None:
        results["training"]["pipeline"] = pipeline
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, args.markdown, read_soak())  # keeps the last soak's section
    print(f"wrote {args.markdown} and {args.results} in {results['total_seconds']} s")
    failed = results.get("training", {}).get("pipeline", {}).get("failed")
    if failed:
        sys.exit(
            f"the pipeline failed at stage {failed}; see {results['training']['pipeline']['log']}"
        )


if __name__ == "__main__":
    main()
