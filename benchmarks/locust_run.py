"""``python -m benchmarks.locust_run`` (``make loadtest``): the Locust load test of
``locustfile.py`` against a scoring service started locally.

Starts ``python -m app`` on 127.0.0.1, waits (bounded) for ``/readyz``, runs Locust headless
with ``locustfile.py`` for a fixed duration, always stops the service, and exits with
Locust's exit code (1 when an SLO gate of the locustfile fails). The service's own log
and its feedback label log go to the output directory, never to ``var/``: the load
test's labels are synthetic and must not reach retraining.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 30.0  # the service drains in-flight requests for up to 20 s
LOCUST_GRACE_SECONDS = 120.0  # on top of the duration: start-up, stop, reports


def duration_seconds(text: str) -> int:
    """Locust's ``--run-time`` format (``90``, ``60s``, ``5m``, ``1h30m``) in seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?|(\d+)", text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 60s, 5m, 1h30m")
    hours, minutes, seconds, bare = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds + bare
    if total <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return total


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Locust options not listed here come from its LOCUST_* environment variables; "
        "the SLO gates from SLO_P95_MS, SLO_P99_MS and SLO_MAX_FAILURE_RATIO.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the service binds to")
    parser.add_argument("--port", type=int, default=8089, help="port of the service (8089)")
    parser.add_argument("--users", type=positive_int, default=20, help="Locust users (20)")
    parser.add_argument(
        "--spawn-rate", type=float, default=10.0, help="users started per second (10)"
    )
    parser.add_argument(
        "--duration", default="60s", help="Locust run time, e.g. 60s, 5m, 1h30m (60s)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for /readyz before giving up (60)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("reports/loadtest"),
        help="directory for locust_*.csv, locust.html, server.log, labels.sqlite",
    )
    parser.add_argument(
        "--locustfile", type=Path, default=ROOT / "locustfile.py", help="the Locust file"
    )
    args = parser.parse_args(argv)
    try:
        duration_seconds(args.duration)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--duration: {exc}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the load test serves on a loopback address only")
    return args


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``url`` until it answers 200, the server exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310 # always http://HOST:PORT/readyz
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the service's process group (uvicorn and any workers), then SIGKILL."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # run the finally blocks below on SIGTERM too
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = f"http://{'[::1]' if args.host == '::1' else args.host}:{args.port}"

    if port_in_use(args.host, args.port):
        print(f"loadtest: {args.host}:{args.port} is already in use", file=sys.stderr)
        return 2
    for needed in ("models/bundle", "feature_repo/data/online_store.db"):
        if not (ROOT / needed).exists():
            print(f"loadtest: warning: no {needed} (run `make train`): scoring degrades")

    server_env = {
        **os.environ,
        "HOST": args.host,
        "PORT": str(args.port),
        "LABEL_LOG": str((out / "labels.sqlite").resolve()),
    }
    locust_env = dict(os.environ)
    if not locust_env.get("LOCUST_API_KEY") and os.environ.get("API_KEYS"):
        locust_env["LOCUST_API_KEY"] = os.environ["API_KEYS"].split(",")[0].strip()

    server_log = out / "server.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(  # nosec B603 # fixed argv (this interpreter, -m app)
            [sys.executable, "-m", "app"],
            cwd=ROOT,
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    try:
        print(f"loadtest: service pid {server.pid} on {base}, log {server_log}")
        if not wait_ready(f"{base}/readyz", server, args.ready_timeout):
            why = "exited" if server.poll() is not None else f"not ready in {args.ready_timeout}s"
            print(f"loadtest: the service {why}; last log lines:", file=sys.stderr)
            print(tail(server_log), file=sys.stderr)
            return 3
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(args.locustfile),
            "--headless",
            "--host",
            base,
            "-u",
            str(args.users),
            "-r",
            f"{args.spawn_rate:g}",
            "-t",
            args.duration,
            "--stop-timeout",
            "10",
            "--csv",
            str(out / "locust"),
            "--html",
            str(out / "locust.html"),
        ]
        print("loadtest:", " ".join(command), flush=True)
        limit = duration_seconds(args.duration) + LOCUST_GRACE_SECONDS
        try:
            code = subprocess.run(command, cwd=ROOT, env=locust_env, timeout=limit).returncode  # nosec B603 # argv above, -m locust
        except subprocess.TimeoutExpired:
            print(f"loadtest: locust did not finish within {limit:.0f}s", file=sys.stderr)
            return 124
        print(f"loadtest: locust exited with {code}; reports in {out}/")
        return code
    finally:
        stop(server)


if __name__ == "__main__":
    sys.exit(main())
