"""A real ``redis-server`` for tests (Debian's redis-server, from ``make install``).

Fixtures (a test module or conftest takes them with ``redis_server =
redis_fixtures.redis_server`` after ``from tests import redis_server as redis_fixtures``,
or the root conftest lists ``tests.redis_server`` in ``pytest_plugins``):

- ``redis_server``: one plain server for the session, on 127.0.0.1 and a free port,
  without persistence. Tests share it: each uses its own ``db`` number or flushes.
- ``redis_tls``: one TLS-only server for the session (``--port 0 --tls-port``), with a
  test CA and a server certificate made like Memorystore's: its subject is not the
  address clients connect to, and its subjectAltName is another IP (10.20.0.3).
- ``redis_factory``: starts servers that the test may stop and restart (outages).
- ``redis_feast``: the session's tiny Feast repository (``feast_repo``) loaded into
  ``redis_server`` (db 0) by the online-store job: ``(repo, yaml name)``.

Helpers: :func:`redis_feast_repo` (from :mod:`benchmarks.redis_server`, which ``make bench``
shares) writes a ``feature_store`` yaml for a Redis online store into a copy of an applied
Feast repository and loads it with the real online-store job; :class:`StallingProxy` sits
in front of a server and can stop answering (a store that accepts connections and never
replies) and start again.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.redis_server import RedisServer as _RedisServer
from benchmarks.redis_server import TlsFiles
from benchmarks.redis_server import redis_feast_repo as redis_feast_repo
from benchmarks.redis_server import write_redis_yaml as write_redis_yaml
from benchmarks.server import free_port as free_port

MEMORYSTORE_CN = "Google Cloud Memorystore Redis Server"
MEMORYSTORE_IP = "10.20.0.3"


def make_tls_files(directory: Path, cn: str = MEMORYSTORE_CN, ip: str = MEMORYSTORE_IP) -> TlsFiles:
    """A CA and a server certificate (``cn``, subjectAltName ``IP:ip``) made by ``openssl``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, request = (
        directory / "server.pem",
        directory / "server.key",
        directory / "server.csr",
    )
    ext = directory / "server.ext"
    ext.write_text(
        f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl = ["openssl"]
    quiet = {"check": True, "capture_output": True}
    subprocess.run(
        [*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/O=Test/CN=Test Memorystore CA", "-keyout", str(ca_key), "-out", str(ca)],
        **quiet,
    )
    subprocess.run(
        [*openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O=Google, Inc/CN={cn}"]
        + ["-keyout", str(key), "-out", str(request)],
        **quiet,
    )
    subprocess.run(
        [*openssl, "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key)]
        + ["-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)],
        **quiet,
    )
    return TlsFiles(ca, cert, key)


class RedisServer(_RedisServer):
    """:class:`benchmarks.redis_server.RedisServer` that skips the test without redis-server."""

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (make install)")
        super().start(timeout_s)
        return self


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = tmp_path_factory.mktemp("redis-tls")
    server = RedisServer(directory, tls=make_tls_files(directory / "tls")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``redis_factory(tls=None)`` starts a server of the test's own (stopped at the end)."""
    servers: list[RedisServer] = []

    def start(tls: TlsFiles | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", tls=tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


SERVICE = "fraud_detection_v2"


@pytest.fixture(scope="session")
def redis_feast(
    feast_repo: Path, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    target = tmp_path_factory.mktemp("redis-repo") / "repo"
    return redis_feast_repo(feast_repo, target, redis_server.connection_string(), SERVICE)


def load_record(repo: Path, yaml_name: str, feature_service: str = SERVICE) -> Any:
    """The load record in the online store of ``repo``/``yaml_name`` (None: none)."""
    from feature_repo.feast_runtime import import_feast
    from feature_repo.online_status import read_load_record

    feast = import_feast()
    store = feast.FeatureStore(repo_path=str(repo), fs_yaml_file=repo / yaml_name)
    return read_load_record(store, feature_service)


class StallingProxy:
    """A TCP proxy to ``host:port`` that can stall: while stalled, it accepts
    connections and reads what clients send but never answers or forwards anything."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.stalled = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="stalling-proxy").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        """Answer again: new connections are forwarded (stalled ones stay silent)."""
        self.stalled.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.stalled.is_set():
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Forward until either side closes; while stalled, swallow instead of forwarding."""
        try:
            while data := source.recv(65536):
                if not self.stalled.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        try:  # wakes the blocked accept(); close() alone leaves the port listening
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for s in self._sockets:  # shut down first: close() alone wakes no blocked reader
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
