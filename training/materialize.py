"""Stage ``materialize``: ``feast apply``, then load the online store over explicit windows.

Registers the definitions in ``feature_repo/`` and loads the online store with
:func:`feature_repo.online_load.load`, the same code the ``feast-materialize`` CronJob
runs on GKE: each view of the FeatureService over a window taken from its table (the
newest snapshot of every customer and terminal; the newest terminal location and
velocity state), independent of the materialization intervals the registry records, and
then the load record the service's readiness check reads. The simulated data lives in
the past: ``materialize-incremental`` would start at *now* minus the TTL and find
nothing. ``--end`` loads the store *as of* an earlier time, as ``make replay`` does
before streaming the transactions after it. A SQLite online store is switched to
write-ahead logging, so the service's pushes never block its reads. Parameters in
``params.yaml`` section ``materialize``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd

from feature_repo.online_load import load
from training.params import load_params

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
        pd.read_parquet(repo / "data" / table, columns=["event_timestamp"])["event_timestamp"].max()
        for table in SNAPSHOT_TABLES
    ]
    return pd.Timestamp(max(ends)) + pd.Timedelta(seconds=1)


def loaded_entities(repo: Path, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, int]:
    """Entities with a row in ``[start, end)`` (any time before ``end`` for the stream
    views): what the backfill puts online."""
    counts = {}
    tables = [(t, start) for t in SNAPSHOT_TABLES] + [
        (t, pd.Timestamp.min.tz_localize("UTC")) for t in STREAM_VIEWS.values()
    ]
    for table, since in tables:
        if not (repo / "data" / table).is_file():
            continue
        key = "customer_id" if table.startswith("customer") else "terminal_id"
        frame = pd.read_parquet(repo / "data" / table, columns=[key, "event_timestamp"])
        window = frame[(frame.event_timestamp >= since) & (frame.event_timestamp < end)]
        counts[table.removesuffix(".parquet")] = int(window[key].nunique())
    return counts


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
    run([*feast_cli(repo), "apply"])
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="feast apply + materialize-incremental")
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    service = load_params(args.params)["materialize"]["feature_service"]
    end = materialize(args.repo, service)
    start = end - SNAPSHOT_TTL
    record = {
        "feature_service": service,
        "backfill_start": start.isoformat(),
        "end": end.isoformat(),
        "entities": loaded_entities(args.repo, start, end),
    }
    (args.repo / "data" / "materialized.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"materialize: online store current up to {end.isoformat()}: {record['entities']}")


if __name__ == "__main__":
    main()
