"""What ``make bench`` and ``make soak`` share: the requests, the machine, and the service
launched the same way for both (``python -m app``, production-like settings, one core)."""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.server import Server, start
from benchmarks.transactions import request_body

HOST = "127.0.0.1"


def request_bodies(data: Path, n: int) -> list[dict[str, Any]]:
    """The last ``n`` transactions of the time-later stream, as ``/v1/predict`` bodies."""
    frame = pd.read_parquet(data).tail(n)
    return [request_body(row) for row in frame.itertuples(index=False)]


@contextmanager
def generator_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection in the load generator while it measures.

    A full collection walks every object the generator holds (tasks, futures, latency
    lists) and stops its event loop for tens to hundreds of milliseconds: requests go out
    late, and latency counted from the due time blames the service for the generator's
    pause. Reference counting still frees almost everything; the runs are bounded.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def add_service_arguments(parser: argparse.ArgumentParser, port: int, target: str) -> None:
    """The options every harness shares: distinct requests, port, interpreter, data, bundle."""
    parser.add_argument("--transactions", type=int, default=6000, help="distinct requests")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument(
        "--serve-python",
        type=Path,
        default=Path(sys.executable),
        help=f"the interpreter that runs the service (make {target}: the requirements-api venv)",
    )
    parser.add_argument("--data", type=Path, default=Path("data/v1/transactions.parquet"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))


def pin(cores: set[int]) -> None:
    """Pin this process to ``cores`` (nothing when empty)."""
    if cores:
        os.sched_setaffinity(0, cores)


def unpin() -> None:
    pin(set(range(os.cpu_count() or 1)))


def machine() -> dict[str, Any]:
    """CPU, memory, Python, platform, commit and date, recorded with every run."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit or "unknown",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def service_env(port: int, var: Path) -> dict[str, str]:
    """The service's environment: one worker on 127.0.0.1, INFO logs, the label log and the
    prediction audit log under ``var`` (never the workspace's var/), one native thread."""
    return {
        "HOST": HOST,
        "PORT": str(port),
        "WORKERS": "1",
        "LOG_LEVEL": "INFO",
        "LABEL_LOG": str(var / "labels.sqlite"),
        "AUDIT_LOG": str(var / "predictions.sqlite"),
        # as the image sets them for its one-core pods
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def compile_service(python: Path) -> None:
    """As the Dockerfile does: the service's own modules compiled once, never at start-up."""
    subprocess.run([str(python), "-m", "compileall", "-q", "app", "feature_repo"], check=True)


def start_service(
    python: Path, port: int, env: dict[str, str], cores: set[int] | None, log: Path
) -> Server:
    """``python -m app`` with ``env``, pinned to ``cores``, once ``/readyz`` answers 200."""
    return start([str(python), "-m", "app"], port, env, cores, log)
