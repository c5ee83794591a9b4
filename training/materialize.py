"""Stage ``materialize``: ``feast apply``, a first backfill, then ``materialize-incremental``.

Registers the definitions in ``feature_repo/`` and loads the newest snapshot of every
customer and terminal into the online store. The simulated data lives in the past, and a
first ``materialize-incremental`` would start at *now* minus the TTL and find nothing, so
the stage first loads the last TTL before the end of the feature tables with
``feast materialize START END`` (an idempotent upsert of one snapshot per entity, so it
also rebuilds a deleted online store), then runs ``materialize-incremental END`` as the
daily CronJob does in production. Parameters in ``params.yaml``
section ``materialize``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from training.params import load_params

SNAPSHOT_TABLES = ("customer_features.parquet", "terminal_features.parquet")
LOCAL_STATE = ("registry.db", "online_store.db")


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
    """Entities with a snapshot in ``[start, end)``: what the backfill puts online."""
    counts = {}
    for table in SNAPSHOT_TABLES:
        frame = pd.read_parquet(repo / "data" / table)
        key = frame.columns[0]
        window = frame[(frame.event_timestamp >= start) & (frame.event_timestamp < end)]
        counts[table.removesuffix(".parquet")] = int(window[key].nunique())
    return counts


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def materialize(repo: Path, feature_service: str) -> pd.Timestamp:
    """Rebuild the local registry and online store from the definitions; returns the end time.

    Both SQLite files are derived state: starting from scratch keeps them consistent
    (``feast apply`` on an unchanged registry would not recreate a deleted online store).
    """
    for derived in LOCAL_STATE:
        (repo / "data" / derived).unlink(missing_ok=True)
    run([*feast_cli(repo), "apply"])
    services = subprocess.run(
        [*feast_cli(repo), "feature-services", "list"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if feature_service not in services.split():
        raise SystemExit(f"materialize: feature service {feature_service!r} not registered")
    end = materialization_end(repo)
    stamp = "%Y-%m-%dT%H:%M:%S"
    backfill = [(end - SNAPSHOT_TTL).strftime(stamp), end.strftime(stamp)]
    run([*feast_cli(repo), "materialize", *backfill])
    run([*feast_cli(repo), "materialize-incremental", end.strftime(stamp)])
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
