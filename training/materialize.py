"""Stage ``materialize``: ``feast apply``, then load the online store over explicit windows.

Registers the definitions in ``feature_repo/`` and loads the online store with
:func:`training.inputs.feast_store.materialize`, which runs
:func:`feature_repo.online_load.load`, the same code the ``feast-materialize`` CronJob
runs on GKE: each view of the FeatureService over a window taken from its table (the
newest snapshot of every customer and terminal; the newest terminal location and
velocity state), independent of the materialization intervals the registry records, and
then the load record the service's readiness check reads. The stage writes
``feature_repo/data/materialized.json``, a deterministic record of what it loaded.
Parameters in ``params.yaml`` section ``materialize``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from feature_repo.online_load import read_columns
from training.inputs.feast_store import SNAPSHOT_TABLES, SNAPSHOT_TTL, STREAM_VIEWS, materialize
from training.inputs.params import load_params


def loaded_entities(repo: Path, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, int]:
    """Entities with a row in ``[start, end)`` (any time before ``end`` for the stream
    views): what the backfill puts online."""
    counts = {}
    tables = [(t, start) for t in SNAPSHOT_TABLES] + [
        (t, pd.Timestamp.min.tz_localize("UTC")) for t in STREAM_VIEWS.values()
    ]
    for table, since in tables:
        if not (repo / "data" / table).exists():  # a file, or a date-partitioned directory
            continue
        key = "customer_id" if table.startswith("customer") else "terminal_id"
        frame = read_columns(repo / "data" / table, [key, "event_timestamp"])
        window = frame[(frame.event_timestamp >= since) & (frame.event_timestamp < end)]
        counts[table.removesuffix(".parquet")] = int(window[key].nunique())
    return counts


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
