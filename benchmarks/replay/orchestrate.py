"""``make replay`` (``python -m benchmarks.replay``): the production-like run. A feature store
as of the replay's start, the service on loopback, the daily feature job, and the streaming
client (:mod:`benchmarks.replay.client`) sending through it.

1. A copy of the feature repository in ``var/replay/feature_repo`` is materialized *as of*
   the first replayed transaction (the pipeline's ``materialize(end=...)``): daily
   snapshots, terminal locations and velocity states from before it, nothing after. The
   workspace's own online store (current to the end of the data) is not touched.
2. The service (``python -m app``, the API interpreter) starts on 127.0.0.1 over that copy,
   with the bundle in ``models/bundle``; it pushes velocity state as it scores.
3. While the stream runs, the daily snapshot job (``feast materialize-incremental`` of the
   batch views) runs at every simulated midnight, when the stream reaches it, as the
   CronJob does on GKE; without it the snapshots would go stale after two simulated days.
4. The client streams the transactions at ``--rate`` and writes the summary
   (``var/replay/summary.json`` and ``summary.md``); the runs of the daily job are added to it.

Everything is bounded: the replay by its count and ``--max-seconds``, the service by this
process (stopped at the end, whatever happens).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.harness import service_env, start_service
from benchmarks.replay.client import main as replay_main
from benchmarks.replay.stream import read_transactions, select
from benchmarks.server import free_port
from training.inputs.feast_store import SNAPSHOT_VIEWS, feast_cli, materialize
from training.inputs.params import load_params

REPO_FILES = ("definitions.py", "feature_store.yaml", ".feastignore")
TABLES = (
    "customer_features.parquet",
    "terminal_features.parquet",
    "terminal_locations.parquet",
    "customer_velocity.parquet",
)


def store_as_of(source: Path, target: Path, service: str, start: pd.Timestamp) -> dict[str, Any]:
    """A copy of the feature repository whose online store is as of ``start``."""
    if target.exists():
        shutil.rmtree(target)
    (target / "data").mkdir(parents=True)
    for name in REPO_FILES:
        shutil.copy(source / name, target / name)
    for table in TABLES:  # the feature job's date-partitioned directories (or files)
        if (source / "data" / table).is_dir():
            shutil.copytree(source / "data" / table, target / "data" / table)
        else:
            shutil.copy(source / "data" / table, target / "data" / table)
    began = time.perf_counter()
    materialize(target, service, end=start)
    record = {
        "feature_service": service,
        "backfill_start": (start - pd.Timedelta(days=2)).isoformat(),
        "end": start.isoformat(),
        "seconds": round(time.perf_counter() - began, 1),
    }
    (target / "data" / "materialized.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


class DailyJob:
    """Runs the batch views' ``materialize-incremental`` at each simulated midnight, when
    the stream (sent at ``rate`` from ``began``) reaches it."""

    def __init__(self, repo: Path, stream: pd.DataFrame, rate: float, log: Path) -> None:
        stamps = pd.to_datetime(stream["timestamp"], utc=True).reset_index(drop=True)
        days = stamps.dt.floor("D")
        firsts = days[days != days.shift()].index[1:]  # first transaction of each new day
        self.schedule = [(int(i) / rate, days[i]) for i in firsts]
        self.repo = repo
        self.log = log
        self.runs: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-job", daemon=True)

    def start(self) -> None:
        self.began = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        views = [arg for view in SNAPSHOT_VIEWS for arg in ("--views", view)]
        with self.log.open("ab") as out:
            for due, day in self.schedule:
                if self._stop.wait(max(0.0, self.began + due - time.monotonic())):
                    return
                started = time.monotonic()
                end = day.strftime("%Y-%m-%dT%H:%M:%S")
                command = [*feast_cli(self.repo), "materialize-incremental", end, *views]
                done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
                self.runs.append(
                    {
                        "day": day.date().isoformat(),
                        "late_seconds": round(started - self.began - due, 1),
                        "seconds": round(time.monotonic() - started, 1),
                        "exit": done.returncode,
                    }
                )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=Path("data/v1/transactions.parquet"))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--start", help="first simulated time to replay (default: the first)")
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--work", type=Path, default=Path("var/replay"))
    parser.add_argument("--serve-python", type=Path, default=Path(sys.executable))
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--api-key-file", type=Path, help="passed to the client (a service with API_KEYS set)"
    )
    args = parser.parse_args(argv)

    params = load_params(args.params)
    service = params["training_set"]["feature_service"]
    start = pd.Timestamp(args.start, tz="UTC") if args.start else None
    stream = select(read_transactions(args.data), start, args.limit)
    first = pd.Timestamp(stream["timestamp"].iloc[0])
    args.work.mkdir(parents=True, exist_ok=True)
    repo = args.work / "feature_repo"
    print(f"replay: feature store as of {first} in {repo}", flush=True)
    record = store_as_of(args.repo, repo, service, first)

    port = args.port or free_port()
    env = service_env(port, args.work)
    env.update(
        {
            "FEATURE_REPO": str(repo.resolve()),
            "FEATURE_SERVICE": service,
            "BUNDLE_URI": str(args.bundle.resolve()),
            "LOG_LEVEL": "WARNING",
        }
    )
    for database in ("labels.sqlite", "predictions.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (args.work / f"{database}{suffix}").unlink(missing_ok=True)
    server = start_service(args.serve_python, port, env, None, args.work / "service.log")
    daily = DailyJob(repo, stream, args.rate, args.work / "daily-job.log")
    out = args.work / "summary.json"
    try:
        daily.start()
        status = replay_main(
            [
                "--data",
                str(args.data),
                "--rate",
                str(args.rate),
                "--limit",
                str(args.limit),
                "--url",
                f"http://127.0.0.1:{port}",
                "--out",
                str(out),
                "--features-snapshot",
                str(repo / "data" / "materialized.json"),
                *(["--start", args.start] if args.start else []),
                *(["--api-key-file", str(args.api_key_file)] if args.api_key_file else []),
            ]
        )
    finally:
        daily.stop()
        server.stop()
    summary = json.loads(out.read_text())
    summary["feature_store"] = {**record, "daily_job": daily.runs}
    out.write_text(json.dumps(summary, indent=2) + "\n")
    failed = [run for run in daily.runs if run["exit"] != 0]
    print(
        f"replay: daily feature job ran {len(daily.runs)} times"
        f"{f', {len(failed)} FAILED (see daily-job.log)' if failed else ''}",
        flush=True,
    )
    return status or (1 if failed else 0)
