"""Start a server process pinned to one core, time it to ready, read its memory, CPU time
and open files, stop it; :func:`app_env` is a local service's environment (the launcher
the edge floods, the screenshots and the reliability tests share)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Server:
    """A running server: its process, port, and seconds from launch to ``/readyz`` = 200."""

    process: subprocess.Popen[bytes]
    port: int
    ready_seconds: float

    def rss_mb(self) -> float:
        """Resident memory of the process (MiB), from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far, from /proc."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_files(self) -> int:
        """File descriptors the process holds (sockets, logs, databases)."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> None:
        stop_process(self.process, timeout=30)


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM ``process`` unless it has ended, then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def metrics_text(port: int) -> str:
    """The Prometheus text of the service's ``/metrics`` on 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_env(
    port: int, state: Path, bundle: Path | None = None, repo: Path | None = None, **settings: str
) -> dict[str, str]:
    """The environment of a local service (``python -m app``, or uvicorn on ``app.main``):
    127.0.0.1:``port``, its label and audit logs under ``state``, WARNING logs, the bundle
    and the feature repository when given (else the settings' defaults), then ``settings``
    (environment variable names)."""
    env = {"HOST": "127.0.0.1", "PORT": str(port)}
    if bundle is not None:
        env["BUNDLE_URI"] = str(bundle)
    if repo is not None:
        env["FEATURE_REPO"] = str(repo)
    env |= {
        "LABEL_LOG": str(state / "labels.sqlite"),
        "AUDIT_LOG": str(state / "predictions.sqlite"),
        "LOG_LEVEL": "WARNING",
    }
    return env | settings


def _ready(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start(
    command: Sequence[str],
    port: int,
    env: Mapping[str, str],
    cores: set[int] | None,
    log: Path,
    ready_path: str = "/readyz",
    timeout: float = 180.0,
) -> Server:
    """Launch ``command`` (pinned to ``cores``) and wait until ``ready_path`` answers 200."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
    while time.perf_counter() - began < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}; see {log}")
        if _ready(port, ready_path):
            return Server(process, port, time.perf_counter() - began)
        time.sleep(0.01)
    process.kill()
    raise TimeoutError(f"{' '.join(command)} not ready within {timeout} s; see {log}")
