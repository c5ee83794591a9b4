"""Real service processes for the reliability tests: ``python -m app`` on 127.0.0.1,
a free port, the tiny bundle and Feast repo, and blocking HTTP helpers."""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.server import Server, app_env, free_port, start

__all__ = ["free_port", "post", "serve"]

ROOT = Path(__file__).resolve().parents[2]


def serve(
    port: int,
    bundle: Path,
    repo: Path,
    state: Path,
    log: Path,
    ready_path: str = "/readyz",
    **settings: str,
) -> Server:
    """Start the service and wait until ``ready_path`` (``/readyz``) answers 200."""
    env = app_env(port, state, bundle, repo, **settings)
    return start([sys.executable, "-m", "app"], port, env, None, log, ready_path, timeout=120)


def post(
    connection: http.client.HTTPConnection, path: str, body: Any, headers: Mapping[str, str] = {}
) -> tuple[int, Any]:
    """POST JSON on a kept-alive connection: (status, decoded body)."""
    connection.request(
        "POST", path, json.dumps(body), {"Content-Type": "application/json", **headers}
    )
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")
