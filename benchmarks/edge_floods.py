"""Floods of requests the edge refuses, and the server's resident memory before and after.

``python -m benchmarks.edge_floods --bundle B --feature-repo R`` starts each candidate
HTTP server stack (uvicorn's ``--http``/``--loop`` pairs, and ``python -m app`` itself),
sends ``--requests`` refused requests of each kind over loopback, and prints (and with
``--out``, writes as JSON) resident memory after a warm-up and after the flood. The
flood client is also what ``tests/abuse/test_floods.py`` uses.

Kinds (the server runs with ``MAX_BODY_BYTES=1024`` so bodies stay small):

- ``chunked``: a chunked POST whose body passes the limit (413);
- ``sized``: a POST whose ``Content-Length`` body passes the limit (413);
- ``header``: a GET with one 64 KiB header (431 with the edge limits);
- ``headers``: a GET with 300 small headers (431 with the edge limits).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.server import Server, app_env, free_port, start

FLOOD_ENV = {"MAX_BODY_BYTES": "1024"}
_JSON = b"Content-Type: application/json\r\n"


def _chunked() -> bytes:
    chunk = b"x" * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    return (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"
        + _JSON
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + body
    )


def _sized() -> bytes:
    body = b"x" * 4096
    return (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"
        + _JSON
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def _header() -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65_536 + b"\r\n\r\n"


def _headers() -> bytes:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"


REQUESTS = {"chunked": _chunked(), "sized": _sized(), "header": _header(), "headers": _headers()}

STACKS = {
    "httptools+uvloop": ("httptools", "uvloop"),
    "h11+asyncio": ("h11", "asyncio"),
    "h11+uvloop": ("h11", "uvloop"),
    "httptools+asyncio": ("httptools", "asyncio"),
}


async def _one(port: int, request: bytes) -> int:
    """Send one request on a new connection, read the status line, close; 0 on a reset."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return -1
    try:
        writer.write(request)
        line = await asyncio.wait_for(reader.readline(), 30)
        return int(line.split()[1]) if line.startswith(b"HTTP/") else 0
    except (TimeoutError, OSError, IndexError, ValueError):
        return 0
    finally:
        writer.transport.abort()


async def _flood(port: int, request: bytes, count: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            statuses[await _one(port, request)] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def flood(port: int, kind: str, count: int, concurrency: int = 16) -> Counter[int]:
    """Send ``count`` requests of ``kind``; how many got each status (0: no answer)."""
    return asyncio.run(_flood(port, REQUESTS[kind], count, concurrency))


def measure(server: Server, kind: str, count: int, warmup: int = 2_000) -> dict[str, Any]:
    """Resident memory after ``warmup`` requests of ``kind`` and after ``count`` more."""
    flood(server.port, kind, warmup)
    time.sleep(0.5)
    before = server.rss_mb()
    began = time.perf_counter()
    statuses = flood(server.port, kind, count)
    seconds = time.perf_counter() - began
    time.sleep(0.5)
    after = server.rss_mb()
    return {
        "kind": kind,
        "requests": count,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 1),
        "requests_per_second": round(count / seconds),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def launch(stack: str, bundle: Path, repo: Path, state: Path) -> Server:
    """``python -m app`` (stack ``app``) or plain uvicorn with one HTTP/loop pair."""
    port = free_port()
    state.mkdir(parents=True, exist_ok=True)
    env = app_env(port, state, bundle, repo, **FLOOD_ENV)
    command = [sys.executable, "-m", "app"]
    if stack != "app":
        http, loop = STACKS[stack]
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--http",
            http,
            "--loop",
            loop,
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return start(command, port, env, {0}, state / "server.log", timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--feature-repo", type=Path, required=True)
    parser.add_argument("--stacks", nargs="+", default=[*STACKS, "app"])
    parser.add_argument("--kinds", nargs="+", default=list(REQUESTS))
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--state",
        type=Path,
        help="where the servers' logs and databases go (default: a new temporary directory)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    state = args.state or Path(tempfile.mkdtemp(prefix="edge_floods-"))
    results: list[dict[str, Any]] = []
    for stack in args.stacks:
        for kind in args.kinds:
            server = launch(stack, args.bundle, args.feature_repo, state / stack / kind)
            try:
                row = {"stack": stack, **measure(server, kind, args.requests)}
            finally:
                server.stop()
            print(json.dumps(row), flush=True)
            results.append(row)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
