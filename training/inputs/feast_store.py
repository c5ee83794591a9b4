"""The Feast feature store as the stages use it: the training store, a FeatureService's
columns, and loading the local registry and online store (``feast apply``, then
:func:`feature_repo.online_load.load`).

:func:`materialize` is what the ``materialize`` stage runs, and what ``make replay``
(``benchmarks/replay/``) runs with an earlier ``end`` to load the store *as of* that time.
The simulated data lives in the past: ``materialize-incremental`` would start at *now* minus
the TTL and find nothing, so each view is loaded over a window taken from its table. A
SQLite online store is switched to write-ahead logging, so the service's pushes never block
its reads. Stages import this module; it imports no stage.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from feature_repo.online_load import load, open_store, read_columns

SNAPSHOT_TABLES = ("customer_features.parquet", "terminal_features.parquet")
SNAPSHOT_VIEWS = ("customer_features", "terminal_features")
STREAM_VIEWS = {  # view -> its source table
    "terminal_location": "terminal_locations.parquet",
    "customer_velocity": "customer_velocity.parquet",
}
LOCAL_STATE = ("registry.db", "online_store.db")
ONLINE_DB = "online_store.db"


SNAPSHOT_TTL = pd.Timedelta(days=2)  # = feature_repo/definitions.py SNAPSHOT_TTL


def feast_cli(repo: Path) -> list[str]:
    """The ``feast -c REPO`` command, started with the fast import."""
    return [sys.executable, "-m", "feature_repo.feast_runtime", "-c", str(repo)]


def materialization_end(repo: Path) -> pd.Timestamp:
    """Just after the newest snapshot, so materialization includes it."""
    ends = [
        read_columns(repo / "data" / table, ["event_timestamp"])["event_timestamp"].max()
        for table in SNAPSHOT_TABLES
    ]
    return pd.Timestamp(max(ends)) + pd.Timedelta(seconds=1)


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def use_write_ahead_log(repo: Path) -> None:
    """Switch a SQLite online store to WAL (persistent): pushes then never block reads."""
    database = repo / "data" / ONLINE_DB
    if not database.is_file():
        return
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    connection.close()


def materialize(repo: Path, feature_service: str, end: pd.Timestamp | None = None) -> pd.Timestamp:
    """Rebuild the local registry and online store from the definitions; returns the end time.

    Both SQLite files are derived state: starting from scratch keeps them consistent
    (``feast apply`` on an unchanged registry would not recreate a deleted online store).
    ``end`` (default: just after the newest snapshot) loads the store as of that time.
    """
    for derived in LOCAL_STATE:
        # With the write-ahead log left behind, SQLite would replay the old store's pages
        # onto the new file: all three go together.
        for suffix in ("", "-wal", "-shm"):
            (repo / "data" / f"{derived}{suffix}").unlink(missing_ok=True)
    # The load below reads every source through Spark right away; validating them here
    # would start a second Spark JVM in the CLI process (about 12 s on 2 cores).
    run([*feast_cli(repo), "apply", "--skip-source-validation"])
    services = subprocess.run(
        [*feast_cli(repo), "feature-services", "list"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if feature_service not in services.split():
        raise SystemExit(f"materialize: feature service {feature_service!r} not registered")
    end = materialization_end(repo) if end is None else end
    load(repo, "feature_store.yaml", feature_service, end)
    use_write_ahead_log(repo)
    return end


def training_store(repo: Path) -> Any:
    """A ``FeatureStore`` on ``repo`` with the Spark offline store of ``feature_store.yaml``."""
    return open_store(repo)


def service_features(store: Any, service_name: str) -> list[str]:
    """Feature names of a FeatureService, in the service's order (the model's column order)."""
    service = store.get_feature_service(service_name)
    return [f.name for p in service.feature_view_projections for f in p.features]
