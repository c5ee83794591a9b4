"""Stage ``materialize``: ``feast apply``, a first backfill, then ``materialize-incremental``.

Registers the definitions in ``feature_repo/`` and loads the newest snapshot of every
customer and terminal into the online store. The simulated data lives in the past, and a
first ``materialize-incremental`` would start at *now* minus the TTL and find nothing, so
a fresh online store is first backfilled over one TTL before the end of the feature
tables (``feast materialize START END``); ``materialize-incremental END`` then records
the watermark, as the daily CronJob does in production. Parameters in ``params.yaml``
section ``materialize``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from training.params import load_params

SNAPSHOT_TABLES = ("customer_features.parquet", "terminal_features.parquet")


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


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def materialize(repo: Path, feature_service: str) -> pd.Timestamp:
    """Apply the repo, check the feature service exists, materialize; returns the end time."""
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
    if not (repo / "data" / "online_store.db").exists() or _never_materialized(repo):
        run(
            [
                *feast_cli(repo),
                "materialize",
                (end - SNAPSHOT_TTL).strftime(stamp),
                end.strftime(stamp),
            ]
        )
    run([*feast_cli(repo), "materialize-incremental", end.strftime(stamp)])
    return end


def _never_materialized(repo: Path) -> bool:
    from feature_repo.feast_runtime import import_feast

    store = import_feast().FeatureStore(repo_path=str(repo))
    return any(view.most_recent_end_time is None for view in store.list_feature_views())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="feast apply + materialize-incremental")
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    service = load_params(args.params)["materialize"]["feature_service"]
    end = materialize(args.repo, service)
    print(f"materialize: online store current up to {end.isoformat()}")


if __name__ == "__main__":
    main()
