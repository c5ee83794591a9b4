"""What ``make bench`` and ``make soak`` share: the requests, the machine, and the service
launched the same way for both (``python -m app``, production-like settings, one core)."""

from __future__ import annotations

import argparse
import gc
import os
import platform
import socket
import subprocess
import sys
import time
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


SETTINGS_ENV = Path("k8s/base/settings.env")
KUSTOMIZATION = Path("k8s/base/kustomization.yaml")
# Deployed settings that only make sense in a pod, and what the benchmark does instead:
# loopback address, the workspace's bundle and the store's repository, logs under the
# run's directory, the rule file extracted from its ConfigMap, spans to a loopback sink,
# and no mounted secrets (API keys off, the default PII hash key).
POD_ONLY = frozenset(
    {
        "HOST",
        "PORT",
        "BUNDLE_URI",
        "FEATURE_REPO",
        "FEATURE_STORE_YAML",
        "LABEL_LOG",
        "AUDIT_LOG",
        "RULES_FILE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "API_KEYS_FILE",
        "PII_HASH_KEY_FILE",
    }
)


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a kustomize ``envs`` file (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


def configmap_file(kustomization: Path, configmap: str, key: str) -> str:
    """The text of ``key`` in the ConfigMap ``configmap`` that ``kustomization``'s
    configMapGenerator makes from a file (``files: [key]`` or ``[key=path]``)."""
    import yaml

    spec = yaml.safe_load(kustomization.read_text())
    for generator in spec.get("configMapGenerator", []):
        if generator.get("name") != configmap:
            continue
        for entry in generator.get("files", []):
            name, _, source = str(entry).partition("=")
            source = source or name
            if Path(name).name == key:
                return (kustomization.parent / source).read_text()
        raise KeyError(f"ConfigMap {configmap} in {kustomization} has no file {key}")
    raise KeyError(f"no ConfigMap {configmap} generated by {kustomization}")


def production_env(
    port: int,
    var: Path,
    bundle: Path,
    rules_file: Path,
    sink_port: int,
    settings_env: Path = SETTINGS_ENV,
) -> dict[str, str]:
    """The service as deployed, where that applies on loopback: every setting of
    ``settings_env`` but :data:`POD_ONLY` (audit record fsync per commit, admission
    limits, timeouts, velocity push, head sampling at the deployed ratio, ...), over
    :func:`service_env`; the rule file ``rules_file``, spans exported over OTLP/HTTP to
    127.0.0.1:``sink_port``, and ``bundle`` scored again in shadow as the challenger."""
    deployed = {k: v for k, v in read_env_file(settings_env).items() if k not in POD_ONLY}
    return {
        **deployed,
        **service_env(port, var),
        "BUNDLE_URI": str(bundle),
        "CHALLENGER_URI": str(bundle),
        "RULES_FILE": str(rules_file),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{HOST}:{sink_port}",
        # The per-key limit is derived from this very measurement (benchmarks/capacity.py),
        # and all of the generator's load comes under one key (keys are off): a pod's
        # capacity is measured for many callers, so no per-key limit.
        "RATE_LIMIT_PER_SECOND": "0",
    }


def write_rules_file(out_dir: Path, kustomization: Path = KUSTOMIZATION) -> Path:
    """The deployed rule set (the ``fraud-rules`` ConfigMap's ``rules.yaml``) in ``out_dir``."""
    path = out_dir / "fraud-rules" / "rules.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(configmap_file(kustomization, "fraud-rules", "rules.yaml"))
    return path


def start_otlp_sink(port: int, cores: set[int] | None, log: Path) -> subprocess.Popen[bytes]:
    """An OTLP/HTTP receiver that answers every export with 200, in its own process
    (``benchmarks.tracing_cost --sink``): the collector the spans go to, on loopback."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.tracing_cost", "--sink", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the OTLP sink exited with {process.returncode}; see {log}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise TimeoutError(f"the OTLP sink did not listen on {port}; see {log}")


def compile_service(python: Path) -> None:
    """As the Dockerfile does: the service's own modules compiled once, never at start-up."""
    subprocess.run([str(python), "-m", "compileall", "-q", "app", "feature_repo"], check=True)


def start_service(
    python: Path, port: int, env: dict[str, str], cores: set[int] | None, log: Path
) -> Server:
    """``python -m app`` with ``env``, pinned to ``cores``, once ``/readyz`` answers 200."""
    return start([str(python), "-m", "app"], port, env, cores, log)
