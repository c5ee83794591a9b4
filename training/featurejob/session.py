"""The SparkSession of the feature job, from ``params.yaml`` section ``features.spark``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class SparkConfig:
    """Where the job runs: ``local[*]`` here; a cluster's master (or none) there."""

    master: str = "local[*]"
    shuffle_partitions: int = 8
    driver_memory: str = "2g"

    @classmethod
    def from_params(cls, features: Mapping[str, Any]) -> SparkConfig:
        return cls(**features.get("spark", {}))


def spark_session(config: SparkConfig, app_name: str = "fraud-feature-job") -> SparkSession:
    """A session in UTC with Arrow, no UI; reuses the running one (and its settings)."""
    # Python workers must import this project and its pinned libraries (pandas, pyarrow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder: Any = SparkSession.builder
    session: SparkSession = (
        builder.master(config.master)
        .appName(app_name)
        .config("spark.driver.memory", config.driver_memory)
        .config("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Instants as Parquet TIMESTAMP(MICROS, UTC), which pandas and Feast read as UTC;
        # Spark's default, INT96, reads back as a naive time.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    return session


@contextmanager
def spark_in_use(config: SparkConfig) -> Iterator[SparkSession]:
    """The active session if there is one (a caller's, e.g. the tests'), else a new one
    stopped on exit."""
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    spark = spark_session(config)
    try:
        yield spark
    finally:
        spark.stop()
