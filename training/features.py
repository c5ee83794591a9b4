"""Stage ``features``: the Feast offline sources, from the versioned datasets.

Writes the daily customer and terminal snapshot tables (computed by
:func:`training.inputs.feature_tables.compute_feature_tables`, point-in-time correct, with
the label delay) and the two tables behind ``fraud_detection_v2``: terminal locations
(reference data) and the velocity state after every transaction, computed by
``feature_repo.velocity.offline_states``, the code the service runs online.

Stage ``features`` of ``dvc.yaml``; parameters in ``params.yaml`` section ``features``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from feature_repo.velocity import offline_states
from training.inputs.feature_tables import FeatureConfig, compute_feature_tables
from training.inputs.params import load_params


def terminal_locations(terminals: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame:
    """The ``terminal_location`` view's source: coordinates, valid from ``since``."""
    return pd.DataFrame(
        {
            "terminal_id": terminals["terminal_id"].astype(str).to_numpy(),
            "event_timestamp": pd.Series([since] * len(terminals)).astype("datetime64[us, UTC]"),
            "terminal_x_km": terminals["x_km"].to_numpy(dtype=np.float64),
            "terminal_y_km": terminals["y_km"].to_numpy(dtype=np.float64),
        }
    )


def velocity_log(transactions: pd.DataFrame, locations: pd.DataFrame) -> pd.DataFrame:
    """The ``customer_velocity`` view's offline source: the state after every transaction."""
    where = {
        t: (x, y)
        for t, x, y in zip(
            locations["terminal_id"],
            locations["terminal_x_km"],
            locations["terminal_y_km"],
            strict=True,
        )
    }
    frame: pd.DataFrame = offline_states(transactions, where)
    return frame


def load_transactions(data_dir: Path) -> pd.DataFrame:
    """The full clean stream: every period under ``data_dir``, sorted by time."""
    parts = sorted(data_dir.glob("v*/transactions.parquet"))
    if not parts:
        raise FileNotFoundError(
            f"no data/v*/transactions.parquet under {data_dir}: run `make data`"
        )
    frames = [pd.read_parquet(p) for p in parts]
    return pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="dataset directory")
    parser.add_argument(
        "--out", type=Path, default=Path("feature_repo/data"), help="where the tables go"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)

    config = FeatureConfig(**load_params(args.params)["features"])
    transactions = load_transactions(args.data)
    print(f"features: {len(transactions):,} transactions", flush=True)
    terminals = pd.read_parquet(args.data / "terminals.parquet")
    write_feature_tables(transactions, terminals, config, args.out)


def write_feature_tables(
    transactions: pd.DataFrame, terminals: pd.DataFrame, config: FeatureConfig, out: Path
) -> None:
    """Every source table of ``feature_repo/definitions.py`` into ``out``."""
    started = time.perf_counter()
    customers, terminal_snapshots = compute_feature_tables(transactions, config)
    out.mkdir(parents=True, exist_ok=True)
    customers.to_parquet(out / "customer_features.parquet", index=False)
    terminal_snapshots.to_parquet(out / "terminal_features.parquet", index=False)
    print(
        f"features: {len(customers):,} customer and {len(terminal_snapshots):,} terminal "
        f"snapshots in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    since = pd.to_datetime(transactions["timestamp"], utc=True).min().floor("D")
    locations = terminal_locations(terminals, since)
    locations.to_parquet(out / "terminal_locations.parquet", index=False)
    started = time.perf_counter()
    velocity = velocity_log(transactions, locations)
    velocity.to_parquet(out / "customer_velocity.parquet", index=False)
    print(
        f"features: velocity state after {len(velocity):,} transactions "
        f"in {time.perf_counter() - started:.1f}s -> {out}",
        flush=True,
    )


if __name__ == "__main__":
    main()
