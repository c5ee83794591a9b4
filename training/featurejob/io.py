"""The feature job's input and output.

Input: the system of record's export (``<dir>/transactions/date=YYYY-MM-DD/*.parquet``)
or the DVC data set (``data/v*/transactions.parquet``), both with the columns below;
the terminals' coordinates (reference data) from ``data/terminals.parquet``.
Output: each table a Parquet dataset partitioned Hive-style by ``date`` (the UTC date of
``event_timestamp``), replaced whole by a rerun.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

COLUMNS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "terminal_id",
    "amount",
    "channel",
    "distance_from_home_km",
    "is_fraud",
)


def _typed(frame: DataFrame) -> DataFrame:
    return frame.select(
        *(F.col(c).cast("string") for c in ("transaction_id", "customer_id", "terminal_id")),
        F.col("timestamp").cast("timestamp"),
        F.col("amount").cast("double"),
        F.col("channel").cast("string"),
        F.col("distance_from_home_km").cast("double"),
        F.col("is_fraud").cast("int"),
    )


def read_export(spark: SparkSession, export_dir: Path) -> DataFrame:
    """The system of record's export (its ``date`` partition column is dropped)."""
    return _typed(spark.read.parquet(str((export_dir / "transactions").resolve())))


def read_dvc_data(spark: SparkSession, data_dir: Path) -> DataFrame:
    """Every period of the DVC data set (``data/v*/transactions.parquet``)."""
    parts = sorted(data_dir.glob("v*/transactions.parquet"))
    if not parts:
        raise FileNotFoundError(
            f"no data/v*/transactions.parquet under {data_dir}: run `make data`"
        )
    frames = [_typed(spark.read.parquet(str(p.resolve())).select(*COLUMNS)) for p in parts]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def terminal_locations(
    spark: SparkSession, terminals: pd.DataFrame, since_micros: int
) -> DataFrame:
    """The ``terminal_location`` view's source: coordinates, valid from ``since``."""
    frame = pd.DataFrame(
        {
            "terminal_id": terminals["terminal_id"].astype(str).to_numpy(),
            "terminal_x_km": terminals["x_km"].astype("float64").to_numpy(),
            "terminal_y_km": terminals["y_km"].astype("float64").to_numpy(),
        }
    )
    locations = spark.createDataFrame(frame)
    return locations.select(
        "terminal_id",
        F.timestamp_micros(F.lit(since_micros)).alias("event_timestamp"),
        "terminal_x_km",
        "terminal_y_km",
    )


def write_table(table: DataFrame, path: Path, key: str) -> int:
    """Write ``table`` to ``path`` partitioned by ``date``, replacing what was there (a new
    directory renamed into place); returns its row count."""
    path = path.resolve()  # Spark resolves relative paths against the JVM's directory
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # UTC-adjusted microseconds, which pandas and Feast read as datetime64[us, UTC]; Spark's
    # default (INT96) reads back tz-naive.
    table.sparkSession.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    dated = table.withColumn("date", F.date_format("event_timestamp", "yyyy-MM-dd"))
    (
        dated.repartition("date")
        .sortWithinPartitions("date", key, "event_timestamp")
        .write.partitionBy("date")
        .parquet(str(staging))
    )
    old = path.parent / f".{path.name}.{uuid.uuid4().hex}.old"
    if path.is_dir():
        path.rename(old)
    elif path.exists():  # a single-file table written by the pandas job
        path.unlink()
    staging.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    table_rows: int = table.sparkSession.read.parquet(str(path)).count()
    return table_rows
