"""A throwaway PostgreSQL server (Debian's ``postgresql``, from ``make install``) on
127.0.0.1, for the tests, ``make loop`` and the benchmarks.

``initdb`` refuses to run as root: as root the cluster is owned and run by the
``postgres`` system user (``runuser``). The server listens on loopback only, with
password authentication for the application role, and is stopped by its process id.

    python -m benchmarks.postgres_server --dir /tmp/pg --port 55432   # runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
DATABASE = "fraud"
ROLE = "fraud_app"


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary (they are not on PATH on Debian)."""
    for directory in BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: install Debian's postgresql (make install)")
    return found


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    """One cluster in ``directory`` serving on ``port``; the application role's password
    is in ``password_file``."""

    directory: Path
    port: int
    data: Path = field(init=False)

    def __post_init__(self) -> None:
        # As root the cluster belongs to ``postgres``, which must reach its data directory:
        # it gets one of its own under the system's temporary directory (pytest's are 0700).
        if os.geteuid() == 0:
            self.data = Path(tempfile.gettempdir()) / f"fraud-pg-{self.port}-{os.getpid()}"
        else:
            self.data = self.directory / "data"

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def init(self) -> None:
        """Create the cluster, the database and the password-protected role."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(18))
        self.password_file.chmod(0o600)
        if os.geteuid() == 0:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data.mkdir(mode=0o700)
            shutil.chown(self.data, "postgres", "postgres")
        subprocess.run(
            _as_owner([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                       "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        hba = self.data / "pg_hba.conf"
        hba.write_text(
            "local all postgres trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
        )
        self.start()
        password = self.password_file.read_text()
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def start(self, timeout_s: float = 30.0) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=on"
        subprocess.run(
            _as_owner([pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                       str(self.data / "server.log"), "-w", "-t", str(int(timeout_s)), "start"]),
            check=True, capture_output=True,
        )  # fmt: skip

    def pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.is_file():
            return None
        return int(pid_file.read_text().split()[0])

    def stop(self, fast: bool = True) -> None:
        """Stop the server by its process id (SIGINT: fast shutdown) and wait for it."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT if fast else signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; returns psql's unaligned output."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return result.stdout.strip()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=55432)
    args = parser.parse_args()
    server = PostgresServer(args.dir, args.port)
    server.init()
    print(f"{server.url} (password in {server.password_file}); Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.remove()


if __name__ == "__main__":
    main()
