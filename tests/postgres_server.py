"""A real PostgreSQL for tests (Debian's ``postgresql``, from ``make install``), through
:mod:`benchmarks.postgres_server`.

Fixtures (the root conftest lists this module in ``pytest_plugins``):

- ``postgres``: one server for the session on 127.0.0.1 and a free port. Tests share it:
  each takes a fresh database with ``postgres_url`` (its own tables, nothing to clean).
- ``postgres_url``: ``(url, password_file)`` of a new, empty database on that server.
- ``postgres_factory``: servers the test may stop and start again (outages).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.postgres_server import DATABASE, ROLE, PostgresServer
from benchmarks.server import free_port

_databases = itertools.count()


def _skip_without_postgres() -> None:
    if shutil.which("runuser") is None:
        pytest.fail("runuser is missing (util-linux)")
    try:
        from benchmarks.postgres_server import pg_bin

        pg_bin("initdb")
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}: run make install")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    _skip_without_postgres()
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), free_port())
    server.init()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> tuple[str, Path]:
    name = f"{DATABASE}_{next(_databases)}"
    postgres.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
    return postgres.url.rsplit("/", 1)[0] + f"/{name}", postgres.password_file


@pytest.fixture
def postgres_factory(tmp_path: Path) -> Iterator[Callable[[], PostgresServer]]:
    _skip_without_postgres()
    started: list[PostgresServer] = []

    def make() -> PostgresServer:
        server = PostgresServer(tmp_path / f"pg{len(started)}", free_port())
        server.init()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.remove()
