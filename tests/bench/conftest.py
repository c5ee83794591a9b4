"""A do-nothing HTTP server for the load-generator tests (one per module)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from benchmarks.server import free_port, start


@pytest.fixture(scope="module")
def static_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("static") / "static.log"
    server = start(
        [sys.executable, "-m", "benchmarks.static_server", str(port)], port, {}, None, log, "/"
    )
    yield port
    server.stop()
