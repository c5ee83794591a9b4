"""The whole feature job: every source table of ``feature_repo/definitions.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from training.featurejob.io import COLUMNS, terminal_locations, write_table
from training.featurejob.snapshots import StreamDays, customer_snapshots, terminal_snapshots
from training.featurejob.velocity_log import velocity_log
from training.inputs.feature_tables import FeatureConfig

TABLES = ("customer_features", "terminal_features", "terminal_locations", "customer_velocity")


@dataclass(frozen=True)
class Written:
    """One table the job wrote."""

    name: str
    rows: int
    seconds: float


def run_feature_job(
    transactions: DataFrame,
    terminals: pd.DataFrame,
    config: FeatureConfig,
    out: Path,
    log: Callable[[str], None] = print,
) -> list[Written]:
    """Compute and write the four tables into ``out/<table>.parquet`` (directories)."""
    spark = transactions.sparkSession
    days = StreamDays.of(transactions)
    locations = terminal_locations(spark, terminals, days.start)
    tables: dict[str, tuple[DataFrame, str]] = {
        "customer_features": (customer_snapshots(transactions, config, days), "customer_id"),
        "terminal_features": (terminal_snapshots(transactions, config, days), "terminal_id"),
        "terminal_locations": (locations, "terminal_id"),
        "customer_velocity": (velocity_log(transactions, locations), "customer_id"),
    }
    out.mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    for name in TABLES:
        table, key = tables[name]
        started = time.perf_counter()
        rows = write_table(table, out / f"{name}.parquet", key)
        written.append(Written(name, rows, time.perf_counter() - started))
        log(f"features: {name}: {rows:,} rows in {written[-1].seconds:.1f}s")
    return written


def read_table(path: Path) -> pd.DataFrame:
    """A written table as pandas (without ``date``), sorted by key and time."""
    frame = pd.read_parquet(path).drop(columns="date")
    frame[frame.columns[0]] = frame[frame.columns[0]].astype(str)
    return _sorted_utc(frame)


def snapshot_frames(
    spark: SparkSession, transactions: pd.DataFrame, config: FeatureConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customer and terminal snapshots of an in-memory stream, as pandas (sorted by key
    and time): for callers without files (public data sets, tests)."""
    present = [c for c in COLUMNS if c in transactions.columns]
    frame = spark.createDataFrame(transactions[present])
    days = StreamDays.of(frame)
    customers = customer_snapshots(frame, config, days).toPandas()
    terminals = terminal_snapshots(frame, config, days).toPandas()
    return _sorted_utc(customers), _sorted_utc(terminals)


def _sorted_utc(frame: pd.DataFrame) -> pd.DataFrame:
    stamps = pd.to_datetime(frame["event_timestamp"])
    if stamps.dt.tz is None:  # Arrow hands over naive session-time (UTC) values
        stamps = stamps.dt.tz_localize("UTC")
    frame["event_timestamp"] = stamps.astype("datetime64[us, UTC]")
    key = frame.columns[0]
    ordered: pd.DataFrame = frame.sort_values([key, "event_timestamp"], kind="stable")
    return ordered.reset_index(drop=True)
