"""A throwaway ``redis-server`` (Debian's, from ``make install``) on 127.0.0.1, and a copy
of an applied Feast repository loaded into it, for the tests and ``make bench``.

- :class:`RedisServer`: one server without persistence on a free port (optionally TLS-only,
  optionally pinned to some cores); ``stop()`` and ``start()`` keep its port.
- :func:`redis_feast_repo`: copies an applied Feast repository, writes a
  ``feature_store.redis.yaml`` pointing at a server into the copy, and loads the
  FeatureService with the real online-store job (:func:`feature_repo.online_load.load`,
  the materialize CronJob's code), which ends by writing the load record.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.server import free_port


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a server certificate signed by it."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class RedisServer:
    """A running redis-server; ``stop()`` and ``start()`` keep its port."""

    directory: Path
    port: int = field(default_factory=free_port)
    tls: TlsFiles | None = None
    host: str = "127.0.0.1"
    cores: set[int] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connection_string(self, **params: Any) -> str:
        """``host:port`` plus Feast-style ``key=value`` parameters (``ssl=true``, ...)."""

        def text(value: Any) -> str:
            return str(value).lower() if isinstance(value, bool) else str(value)

        return ",".join([self.address, *(f"{k}={text(v)}" for k, v in params.items())])

    def command(self) -> list[str]:
        args = ["redis-server", "--bind", self.host, "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory), "--protected-mode", "no"]
        if self.tls is None:
            return [*args, "--port", str(self.port)]
        return [
            *args,
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)),
            *("--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"),
        ]

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Launch the server and wait until it answers PING."""
        if shutil.which("redis-server") is None:
            raise FileNotFoundError("redis-server is not installed (make install)")
        self.directory.mkdir(parents=True, exist_ok=True)
        cores = self.cores
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited: {(self.directory / 'redis.log').read_text()}"
                )
            try:
                if self.client().ping():
                    return self
            except Exception:  # not listening yet
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on {self.address} did not start in {timeout_s} s")

    def client(self, db: int = 0) -> Any:
        """A redis-py client (verifying the test CA, not the host name, with TLS)."""
        import redis

        if self.tls is None:
            return redis.Redis(self.host, self.port, db=db, socket_timeout=2)
        return redis.Redis(
            self.host,
            self.port,
            db=db,
            socket_timeout=2,
            ssl=True,
            ssl_ca_certs=str(self.tls.ca),
            ssl_check_hostname=False,
        )

    def flush(self) -> None:
        """Empty every database."""
        client = self.client()
        client.flushall()
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


REDIS_YAML = """\
project: fraud_detection
provider: local
registry:
  registry_type: file
  path: data/registry.db
  cache_ttl_seconds: 0
online_store:
  type: redis
  redis_type: redis
  connection_string: "{connection}"
offline_store:  # as in feature_store.yaml: the load reads the tables with Spark
  type: spark
  spark_conf:
    spark.master: local[2]
    spark.ui.enabled: "false"
    spark.driver.bindAddress: 127.0.0.1
    spark.driver.host: 127.0.0.1
    spark.sql.session.timeZone: UTC
entity_key_serialization_version: 3
auth:
  type: no_auth
"""


def write_redis_yaml(repo: Path, connection: str, name: str = "feature_store.redis.yaml") -> str:
    """A feature_store yaml like feature_store.gke.yaml, with ``connection`` spelled out."""
    (repo / name).write_text(REDIS_YAML.format(connection=connection))
    return name


def redis_feast_repo(
    source: Path, target: Path, connection: str, feature_service: str, load: bool = True
) -> tuple[Path, str]:
    """A copy of the applied repository ``source`` whose ``feature_store.redis.yaml``
    points at ``connection``; with ``load``, the online-store job (the materialize
    CronJob's code) loads the FeatureService into it and writes the load record."""
    shutil.copytree(source, target)
    name = write_redis_yaml(target, connection)
    if load:
        from feature_repo.online_load import load as load_online_store

        load_online_store(target, name, feature_service)
    return target, name
