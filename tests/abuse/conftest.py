"""The load-shaped hardening tests (``make abuse``): the real ``python -m app`` process on
127.0.0.1 with the tiny bundle and Feast repo, attacked the way docs/reliability.md
("Limits") says it can be, each attack bounded in time and count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.server import Server
from tests.reliability.processes import free_port, serve

Launch = Callable[..., Server]


@pytest.fixture
def launch(tiny_bundle: Path, feast_repo: Path, tmp_path: Path) -> Iterator[Launch]:
    """Start the service with extra settings (environment variable names); every process
    started is stopped (SIGTERM, then kill) at the end of the test."""
    started: list[Server] = []

    def start(**settings: str) -> Server:
        state = tmp_path / f"state{len(started)}"
        state.mkdir()
        server = serve(
            free_port(), tiny_bundle, feast_repo, state, state / "server.log", **settings
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
