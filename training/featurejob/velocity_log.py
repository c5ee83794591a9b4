"""The ``customer_velocity`` view's offline source in Spark: the state after every
transaction, one customer per group through ``feature_repo.velocity.customer_log`` (the
code the service runs online)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from feature_repo.velocity import STATE_FIELDS, VelocityEvent, customer_log

SCHEMA = (
    "customer_id string, event_timestamp timestamp, vel_event_seconds array<double>, "
    "vel_event_amounts array<double>, vel_event_terminals array<string>, "
    "vel_event_x_km array<double>, vel_event_y_km array<double>, vel_event_ids array<string>"
)
_EPOCH = pd.Timestamp(0, tz="UTC")


def _utc(stamps: pd.Series) -> pd.Series:
    """Arrow hands timestamps over as naive session-time (UTC) values."""
    stamps = pd.to_datetime(stamps)
    return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")


def one_customer(group: pd.DataFrame) -> pd.DataFrame:
    """The log rows of one customer's transactions (any order; ties by transaction id)."""
    ordered = group.sort_values(["timestamp", "transaction_id"], kind="stable")
    seconds = (_utc(ordered["timestamp"]) - _EPOCH).dt.total_seconds().to_numpy()
    events = [
        VelocityEvent(float(s), float(a), str(t), _nan(x), _nan(y), str(i))
        for s, a, t, x, y, i in zip(
            seconds,
            ordered["amount"].to_numpy(dtype=np.float64),
            ordered["terminal_id"],
            ordered["x_km"],
            ordered["y_km"],
            ordered["transaction_id"],
            strict=True,
        )
    ]
    log = customer_log(events)
    micros = np.round(np.array([stamp for stamp, _ in log], dtype=np.float64) * 1e6)
    frame = pd.DataFrame(
        {
            "customer_id": ordered["customer_id"].astype(str).to_numpy(),
            "event_timestamp": pd.to_datetime(micros.astype("int64"), unit="us", utc=True),
        }
    )
    rows = [state.to_row() for _, state in log]
    for name in STATE_FIELDS:
        frame[name] = [row[name] for row in rows]
    return frame


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def velocity_log(transactions: DataFrame, locations: DataFrame) -> DataFrame:
    """One row per transaction: ``customer_id``, ``event_timestamp`` and ``STATE_FIELDS``;
    terminals missing from ``locations`` get NaN coordinates."""
    where = locations.select(
        "terminal_id", F.col("terminal_x_km").alias("x_km"), F.col("terminal_y_km").alias("y_km")
    )
    events = transactions.select(
        "transaction_id", "timestamp", "customer_id", "terminal_id", "amount"
    ).join(F.broadcast(where), "terminal_id", "left")
    return events.groupBy("customer_id").applyInPandas(one_customer, SCHEMA)
