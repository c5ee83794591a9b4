"""``python -m benchmarks.soak`` (``make soak``): a bounded soak of the service.

The service starts as ``make bench`` starts it (``python -m app``, one worker pinned to core
0, INFO logs, tracing on; load generator on core 1; 127.0.0.1 only), with its label log and
prediction audit log in a temporary directory. Its capacity is measured first (a closed
loop of 32 connections on the same request mix; ``--capacity`` skips that), then an open
loop at ``--load`` of it runs for ``--minutes`` without a pause, counted in windows of
``--window-seconds``. The mix: ``/v1/predict`` on the last transactions of the v1 stream in
turn, and every ``1 / --feedback-share``-th request a ``/v1/feedback`` label for a
transaction id not labelled before (every ``REPEAT_EVERY``-th label repeats the previous one,
an idempotent duplicate), so the label log grows too.

Verdicts (exit status 1 when one fails), with the first window as the warm-up:

- **no failed request**: every request of the capacity run and the soak got a 2xx answer
  (a non-2xx status, a broken or refused connection, or no answer within 30 s fails);
- **memory**: RSS at the end of the last window is at most ``MAX_RSS_GROWTH`` above the RSS
  at the end of the first window;
- **latency stable**: over the windows after the first, the median window p99 of the last
  third is at most ``MAX_P99_RATIO`` times that of the first third, and no window's p50 is
  above ``MAX_P50_RATIO`` times the median window p50.

Writes ``--out`` (``benchmarks/soak.json``) and, unless ``--no-report``, BENCHMARKS.md again
from ``benchmarks/results.json`` and the soak, so neither run erases the other's section.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
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
from benchmarks.report import write_markdown
from benchmarks.server import Server

MAX_RSS_GROWTH = 0.05
MAX_P99_RATIO = 1.5
MAX_P50_RATIO = 2.0
CAPACITY_CONNECTIONS = 32
REPEAT_EVERY = 100  # every 100th label repeats the previous one: "duplicate", still 200


def feedback_requests(
    port: int, labels: Sequence[tuple[str, bool]], repeat_every: int = REPEAT_EVERY
) -> Iterator[bytes]:
    """``/v1/feedback`` requests for ``labels`` (transaction id, is fraud) in order, each
    ``repeat_every``-th one a repeat of the one before; endless (labels reused at the end)."""
    previous = b""
    for n, (transaction_id, is_fraud) in enumerate(itertools.cycle(labels), start=1):
        if repeat_every and n % repeat_every == 0 and previous:
            yield previous
        body = orjson.dumps({"transaction_id": transaction_id, "is_fraud": is_fraud})
        (previous,) = loadgen.encode_requests(HOST, port, "/v1/feedback", [body])
        yield previous


def mixed(predict: Sequence[bytes], feedback: Iterator[bytes], every: int) -> Iterator[bytes]:
    """``predict`` in turn, with the next ``feedback`` request as every ``every``-th request
    (none when ``every`` is 0); endless."""
    predictions = itertools.cycle(predict)
    for n in itertools.count(1):
        yield next(feedback) if every and n % every == 0 else next(predictions)


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def window_record(run: loadgen.Run, end_s: float, probe: dict[str, float]) -> dict[str, Any]:
    """One window's figures: counts, latency percentiles (ms, None without answers), the
    generator's late sends, and the server's state sampled at the window's end."""
    return {
        "end_s": round(end_s, 1),
        "sent": run.count + run.errors,
        "ok": run.count,
        "non_2xx": run.refused,
        "transport": run.errors - run.refused,
        "throughput_rps": round(run.throughput, 1),
        "p50_ms": _ms(run.percentile(50)),
        "p95_ms": _ms(run.percentile(95)),
        "p99_ms": _ms(run.percentile(99)),
        "max_ms": _ms(run.percentile(100)),
        "late": run.late,
        **probe,
    }


def verdicts(
    windows: Sequence[dict[str, Any]], rss_ready_mb: float, before: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    """The three verdicts from the windows (the first is the warm-up), with their figures;
    ``before``: requests sent and failed before the soak (warm-up, capacity)."""
    soak_sent = sum(w["sent"] for w in windows)
    failed = before[1] + sum(w["non_2xx"] + w["transport"] for w in windows)
    failures = {
        "passed": failed == 0,
        "failed": failed,
        "sent": before[0] + soak_sent,
        "soak_sent": soak_sent,
    }
    first, last = windows[0]["rss_mb"], windows[-1]["rss_mb"]
    growth = round(last / first - 1, 4)
    memory = {
        "passed": growth <= MAX_RSS_GROWTH,
        "growth": growth,
        "first_window_mb": first,
        "last_window_mb": last,
        "growth_from_ready": round(last / rss_ready_mb - 1, 4),
        "ready_mb": rss_ready_mb,
        "max_mb": max(w["rss_mb"] for w in windows),
    }
    steady = list(windows[1:]) or list(windows)
    third = max(1, len(steady) // 3)
    p99s = [w["p99_ms"] for w in steady]
    p50s = [w["p50_ms"] for w in steady]
    if None in p99s or None in p50s:  # a window without a single answer
        latency: dict[str, Any] = {"passed": False, "reason": "a window without answers"}
    else:
        p99_first = statistics.median(p99s[:third])
        p99_last = statistics.median(p99s[-third:])
        p50_median = statistics.median(p50s)
        p99_ratio = p99_last / p99_first if p99_first > 0 else math.inf
        p50_ratio = max(p50s) / p50_median if p50_median > 0 else math.inf
        latency = {
            "passed": p99_ratio <= MAX_P99_RATIO and p50_ratio <= MAX_P50_RATIO,
            "windows_per_third": third,
            "p99_first_third_ms": p99_first,
            "p99_last_third_ms": p99_last,
            "p99_ratio": round(p99_ratio, 3),
            "p50_median_ms": p50_median,
            "p50_worst_ms": max(p50s),
            "p50_ratio": round(p50_ratio, 3),
        }
    return {
        "passed": failures["passed"] and memory["passed"] and latency["passed"],
        "failures": failures,
        "memory": memory,
        "latency": latency,
        "rules": {
            "max_rss_growth": MAX_RSS_GROWTH,
            "max_p99_ratio": MAX_P99_RATIO,
            "max_p50_ratio": MAX_P50_RATIO,
        },
    }


class Probe:
    """The server's RSS, open files and CPU share since the previous sample."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.began = self.wall = time.perf_counter()
        self.cpu = server.cpu_seconds()

    def sample(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), self.server.cpu_seconds()
        share = (cpu - self.cpu) / (wall - self.wall) if wall > self.wall else 0.0
        self.wall, self.cpu = wall, cpu
        return {
            "rss_mb": round(self.server.rss_mb(), 1),
            "cpu_percent": round(100 * share, 1),
            "open_files": self.server.open_files(),
        }


async def soak(
    server: Server, requests: Iterator[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    """Warm-up, capacity (unless given), then the windowed open loop."""
    port = server.port
    out: dict[str, Any] = {"ready_seconds": round(server.ready_seconds, 3)}
    out["rss_ready_mb"] = round(server.rss_mb(), 1)
    warmup = await loadgen.closed_loop(HOST, port, requests, 8, args.warmup_seconds)
    out["warmup"] = warmup.summary()
    if args.capacity is None:
        run = await loadgen.closed_loop(
            HOST, port, requests, CAPACITY_CONNECTIONS, args.capacity_seconds
        )
        out["capacity"] = {"measured": True, "connections": CAPACITY_CONNECTIONS, **run.summary()}
        capacity = run.throughput
    else:
        out["capacity"] = {"measured": False, "throughput_rps": args.capacity}
        capacity = args.capacity
    rate = args.load * capacity
    out["offered_rps"] = round(rate, 1)
    duration = args.minutes * 60
    slices = max(1, math.ceil(duration / args.window_seconds - 1e-9))
    print(f"capacity {capacity:,.0f} req/s; soak at {rate:,.0f} req/s for {duration:,.0f} s")
    probe = Probe(server)
    samples: list[dict[str, float]] = []

    def on_window(index: int, run: loadgen.Run) -> None:
        samples.append({"end_s": time.perf_counter() - probe.began, **probe.sample()})
        print(
            f"window {index + 1}/{slices}: {run.count + run.errors:,} answered so far, "
            f"{run.errors} failed, RSS {samples[-1]['rss_mb']:.1f} MiB",
            flush=True,
        )

    began = time.perf_counter()
    runs = await loadgen.open_loop_windows(
        HOST, port, requests, rate, duration, args.window_seconds, on_window
    )
    out["soak_seconds"] = round(time.perf_counter() - began, 1)
    out["windows"] = [
        window_record(run, sample.pop("end_s"), sample)
        for run, sample in zip(runs, samples, strict=True)
    ]
    out["rss_end_mb"] = round(server.rss_mb(), 1)
    return out


def _labels_in(path: Path) -> int | None:
    """Rows in the label log's ``labels`` table (None without a readable log)."""
    if not path.is_file():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()


def _bytes_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the service, soak it, stop it; the whole record of the run."""
    record: dict[str, Any] = {"machine": machine()}
    bodies = request_bodies(args.data, args.transactions)
    predict = loadgen.encode_requests(
        HOST, args.port, "/v1/predict", [orjson.dumps(b) for b in bodies]
    )
    stream = pd.read_parquet(args.data, columns=["transaction_id", "is_fraud"]).iloc[::-1]
    labels = [
        (str(t), bool(f)) for t, f in zip(stream.transaction_id, stream.is_fraud, strict=True)
    ]
    sent_labels = 0

    def counted(feedback: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal sent_labels
        for raw in feedback:
            sent_labels += 1
            yield raw

    every = round(1 / args.feedback_share) if args.feedback_share > 0 else 0
    requests = mixed(predict, counted(feedback_requests(args.port, labels)), every)
    compile_service(args.serve_python)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    # on the workspace's disk (not a tmpfs /tmp): the logs' fsyncs cost what they cost
    with tempfile.TemporaryDirectory(prefix="var-", dir=args.log_dir) as scratch:
        var = Path(scratch)
        env = {
            **service_env(args.port, var),
            "BUNDLE_URI": str(args.bundle),
            "FEATURE_REPO": str(args.feature_repo),
        }
        pin({1} if args.pin else set())
        try:
            server = start_service(
                args.serve_python, args.port, env, {0} if args.pin else None,
                args.log_dir / "service.log",
            )  # fmt: skip
            try:
                with generator_gc_paused():
                    service = asyncio.run(soak(server, requests, args))
            finally:
                server.stop()
        finally:
            unpin()
        label_log, audit_log = Path(env["LABEL_LOG"]), Path(env["AUDIT_LOG"])
        service["label_log"] = {
            "posted": sent_labels,
            "recorded": _labels_in(label_log),
            "bytes": _bytes_on_disk(label_log),
        }
        service["audit_log_bytes"] = _bytes_on_disk(audit_log)
    runs_before = [service["warmup"], service["capacity"]]
    before = (
        sum(r.get("requests", 0) + r.get("errors", 0) for r in runs_before),
        sum(r.get("errors", 0) for r in runs_before),
    )
    return {
        **record,
        "settings": {
            "minutes": args.minutes,
            "window_seconds": args.window_seconds,
            "load": args.load,
            "feedback_share": args.feedback_share,
            "feedback_every": every,
            "repeat_every": REPEAT_EVERY,
            "distinct_predictions": len(bodies),
            "warmup_seconds": args.warmup_seconds,
            "capacity_seconds": args.capacity_seconds if args.capacity is None else None,
            "pinned": args.pin,
        },
        "command": " ".join(["python -m benchmarks.soak", *args.argv]),
        "service": service,
        "verdicts": verdicts(service["windows"], service["rss_ready_mb"], before),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (issue #8: ≥ 10)")
    parser.add_argument("--window-seconds", type=float, default=30.0, help="figures per window")
    parser.add_argument("--load", type=float, default=0.7, help="share of the capacity offered")
    parser.add_argument("--capacity", type=float, help="req/s; skips measuring it")
    parser.add_argument("--capacity-seconds", type=float, default=20.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--feedback-share", type=float, default=0.05, help="of the requests")
    add_service_arguments(parser, port=8310, target="soak")
    parser.add_argument("--feature-repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no core pinning")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path("build/soak"),
        help="the service's log; its label and audit logs (removed)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/soak.json"), help="the record")
    parser.add_argument(
        "--results", type=Path, default=Path("benchmarks/results.json"), help="make bench's"
    )
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--no-report", dest="report", action="store_false",
                        help="leave BENCHMARKS.md alone (smoke runs)")  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.pin = args.pin and (os.cpu_count() or 1) >= 2
    if not 0 < args.load <= 1 or not 0 <= args.feedback_share <= 0.5:
        parser.error("--load must be in (0, 1] and --feedback-share in [0, 0.5]")
    if args.minutes <= 0 or args.window_seconds <= 0:
        parser.error("--minutes and --window-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    written = [str(args.out)]
    if args.report and args.results.is_file():
        write_markdown(json.loads(args.results.read_text()), args.markdown, result)
        written.append(str(args.markdown))
    elif args.report:
        print(f"no {args.results} (run make bench): {args.markdown} not rewritten")
    checks = result["verdicts"]
    for name in ("failures", "memory", "latency"):
        print(f"{name}: {'passed' if checks[name]['passed'] else 'FAILED'} {checks[name]}")
    print(f"wrote {' and '.join(written)}")
    return 0 if checks["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
