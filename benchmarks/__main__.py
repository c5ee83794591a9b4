"""``python -m benchmarks`` (``make bench``): measure the service and write BENCHMARKS.md.

Sections, in order:

1. Per online store (``--stores``, default ``redis sqlite``; Redis is the deployed one:
   Debian's redis-server on 127.0.0.1, no persistence, pinned to core 1 with the load
   generator, loaded from a copy of the workspace's ``feature_repo`` by the real
   online-store job; SQLite is the workspace's own store):

   - ``inprocess``: the per-request stage breakdown (:mod:`benchmarks.inprocess`);
   - ``service``: the real service (``python -m app``, one uvicorn worker pinned to core 0,
     production settings from ``k8s/base/settings.env``: :func:`benchmarks.harness.
     production_env`) driven over loopback HTTP by :mod:`benchmarks.loadgen` on core 1:
     cold start and memory, unloaded latency, saturation, open-loop latency at 10 to 90 %
     of saturation (the latency-versus-load curve, ``benchmarks/latency_vs_load.svg``),
     and the batch endpoint.

2. ``naive``: the naive baseline (:mod:`benchmarks.naive_app`) on the same core, the same
   requests, in the same run, on SQLite; its probabilities are checked against the
   SQLite service's.
3. ``training``: ``training.external`` on a 300,000-row file, and the training pipeline's
   stages (``--pipeline scratch`` reruns them from scratch in a copy of the workspace;
   ``auto`` times whatever ``dvc repro`` has to do in the workspace).
4. ``protocol``: the service on the edge protocol (``python -m app``) against the stack
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
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from benchmarks import batch_path, loadgen
from benchmarks.capacity import derive as derive_capacity
from benchmarks.harness import (
    HOST,
    KUSTOMIZATION,
    SETTINGS_ENV,
    add_service_arguments,
    compile_service,
    generator_gc_paused,
    machine,
    pin,
    production_env,
    request_bodies,
    service_env,
    start_otlp_sink,
    start_service,
    unpin,
    write_rules_file,
)
from benchmarks.latency_plot import PLOT, write_plot
from benchmarks.protocols import run_protocols
from benchmarks.redis_server import RedisServer, redis_feast_repo
from benchmarks.report import read_soak, write_markdown
from benchmarks.server import Server, metrics_text, start, stop_process

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


SHARES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 90)  # % of saturation: the open-loop levels


def _rate_levels(saturation: float) -> list[tuple[int, float]]:
    return [(share, saturation * share / 100) for share in SHARES]


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
    before_batches = degraded_counts(metrics_text(port))
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
    out["degraded"] = degraded_counts(metrics_text(port))
    out["degraded_before_batches"] = before_batches
    return out


DEGRADED = {  # counters of /metrics that say the answers were not all on fresh features
    "fraud_feature_misses": "feature_misses",
    "fraud_velocity_push_failures": "velocity_push_failures",
    "fraud_shadow_dropped": "shadow_dropped",
}


def degraded_counts(text: str) -> dict[str, Any]:
    """From the service's ``/metrics`` after the load: transactions scored without their
    online features, by reason; failed velocity pushes; shadow scores dropped, by reason."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        key = DEGRADED.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if sample.labels:
                out.setdefault(key, {})[",".join(sample.labels.values())] = int(sample.value)
            else:
                out[key] = int(sample.value)
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


@dataclass
class Store:
    """One online store the service is measured on: where its repository and yaml are."""

    name: str
    feature_repo: Path
    feature_store_yaml: str
    load_seconds: float | None = None  # Redis: the online-store job's wall time

    def env(self) -> dict[str, str]:
        return {
            "FEATURE_REPO": str(self.feature_repo),
            "FEATURE_STORE_YAML": self.feature_store_yaml,
        }

    def settings(self) -> Any:
        from app.core.config import Settings

        return Settings(
            log_level="WARNING",
            feature_repo=self.feature_repo,
            feature_store_yaml=self.feature_store_yaml,
        )


def redis_store(args: argparse.Namespace, cores: set[int] | None) -> tuple[Store, RedisServer]:
    """Debian's redis-server on 127.0.0.1 (no persistence, on ``cores``), loaded with the
    FeatureService from a copy of the workspace's ``feature_repo`` by the real job."""
    from app.core.config import Settings

    server = RedisServer(args.out_dir / "redis-server", cores=cores).start()
    try:
        target = args.out_dir / "redis" / "feature_repo"
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        repo, yaml_name = redis_feast_repo(
            Settings().feature_repo, target, server.connection_string(), Settings().feature_service
        )
    except BaseException:
        server.stop()
        raise
    load_seconds = round(time.perf_counter() - began, 1)
    return Store("redis", repo.resolve(), yaml_name, load_seconds), server


def sqlite_store() -> Store:
    """The workspace's own store (``feature_repo``, its SQLite online store)."""
    from app.core.config import Settings

    settings = Settings()
    return Store("sqlite", Path(settings.feature_repo).resolve(), settings.feature_store_yaml)


def run_store(
    args: argparse.Namespace,
    store: Store,
    base_env: dict[str, str],
    singles: list[bytes],
    batches: dict[int, list[bytes]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Cold starts, then every load on the last one: the service's figures on ``store``,
    and its answers to the first ``--parity`` requests."""
    server_cores = {0} if args.pin else None
    var = args.out_dir / store.name
    var.mkdir(parents=True, exist_ok=True)
    env = {**base_env, **store.env(), "LABEL_LOG": str(var / "labels.sqlite"),
           "AUDIT_LOG": str(var / "predictions.sqlite")}  # fmt: skip
    colds = []
    for i in range(args.cold_starts):
        server = start_service(
            args.serve_python, args.port, env, server_cores, var / f"service-{i}.log"
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
    service["cold_starts"] = [
        {"ready_seconds": round(s, 3), "rss_ready_mb": round(m, 1)} for s, m in colds
    ]
    return service, reference


def run_servers(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Every store's in-process breakdown and service figures, the generator's ceiling,
    and the naive baseline (on SQLite)."""
    from benchmarks.inprocess import breakdown

    bodies = request_bodies(args.data, args.transactions)
    singles = [orjson.dumps(b) for b in bodies]
    batches = {  # a size larger than --transactions is not measured
        size: [
            orjson.dumps({"transactions": bodies[i : i + size]})
            for i in range(0, len(bodies) - size + 1, size)
        ]
        for size in (100, 1000)
        if size <= len(bodies)
    }
    timed = [orjson.dumps(b) for b in request_bodies(args.data, args.inprocess + 200)]
    server_cores = {0} if args.pin else None
    generator_cores = {1} if args.pin else None
    compile_service(args.serve_python)
    rules_file = write_rules_file(args.out_dir)
    sink_port = args.port + 3
    sink = start_otlp_sink(sink_port, generator_cores, args.out_dir / "otlp-sink.log")
    base_env = production_env(args.port, args.out_dir, args.bundle, rules_file, sink_port)
    results["service_settings"] = {
        "source": str(SETTINGS_ENV),
        "env": {k: v for k, v in sorted(base_env.items()) if k not in ("LABEL_LOG", "AUDIT_LOG")},
        "rules_file": f"{KUSTOMIZATION.parent}/rules.yaml (ConfigMap fraud-rules)",
        "api_keys": "off: no API_KEYS_FILE (no secret mounted on loopback); per-key rate limit "
        "off (RATE_LIMIT_PER_SECOND=0: it is derived from this measurement)",
        "otlp_sink": f"{HOST}:{sink_port}, own process on the generator's core",
    }
    results["stores"] = {}
    references: dict[str, list[dict[str, Any]]] = {}
    redis: RedisServer | None = None
    try:
        for name in args.stores:
            if name == "redis":
                store, redis = redis_store(args, generator_cores)
            else:
                store = sqlite_store()
            print(f"measuring the service on {name} ({store.feature_repo})", flush=True)
            pin(server_cores or set())
            inprocess = breakdown(store.settings(), timed)
            batch = batch_path.measure(store.settings(), bodies) if len(bodies) >= 1000 else None
            pin(generator_cores or set())
            service, references[name] = run_store(args, store, base_env, singles, batches)
            if batch is not None:
                service["batch_path"] = batch
            unpin()
            entry: dict[str, Any] = {"inprocess": inprocess, "service": service}
            if redis is not None and name == "redis":
                entry["store"] = {
                    "server": "Debian redis-server on 127.0.0.1, no persistence, pinned with "
                    "the load generator (core 1)",
                    "version": redis.client().info("server")["redis_version"],
                    "load_seconds": store.load_seconds,
                    "feature_repo": str(store.feature_repo),
                }
                redis.stop()
                redis = None
            else:
                entry["store"] = {"server": "SQLite file in the workspace's feature_repo",
                                  "feature_repo": str(store.feature_repo)}  # fmt: skip
            results["stores"][name] = entry
    finally:
        if redis is not None:
            redis.stop()
        stop_process(sink)
        unpin()
    pin(generator_cores or set())
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
        results["generator_ceiling_rps"] = round(ceiling, 0)
    finally:
        static.stop()
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
        same = "sqlite" if "sqlite" in references else next(iter(references))
        baseline["parity_max_abs_diff"] = max(
            abs(a["fraud_probability"] - b["fraud_probability"])
            for a, b in zip(answers, references[same], strict=True)
        )
        baseline["parity_checked"] = len(answers)
        baseline["store"] = "sqlite"
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
    parser.add_argument(
        "--stores",
        nargs="+",
        choices=("redis", "sqlite"),
        default=["redis", "sqlite"],
        help="online stores the service is measured on (redis: the deployed one)",
    )
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
    parser.add_argument("--plot", type=Path, default=PLOT, help="the latency-versus-load SVG")
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
        "pinned": args.pin, "stores": args.stores, "open_loop_shares": list(SHARES),
    }}  # fmt: skip
    if args.pipeline == "auto":  # the workspace must be up to date before serving from it
        results["training"] = {"pipeline": pipeline_times(args)}
        args.pipeline = "skip"
    run_servers(args, results)
    if "redis" in results["stores"]:  # else the report judges the store it has, so labelled
        results["deployed_store"] = "redis"
    # the SVG as BENCHMARKS.md links it: relative to the page
    results["plot"] = os.path.relpath(args.plot.resolve(), args.markdown.resolve().parent)
    write_plot(results, args.plot)
    results["capacity"] = derive_capacity(results)  # what the deployment is sized from
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
