"""Daily point-in-time snapshots of customer and terminal features, in Spark.

For every entity and every day boundary ``T`` after its first transaction, one row with
``event_timestamp = T`` summarises the transactions strictly before ``T`` over the windows
of :class:`~training.inputs.feature_tables.FeatureConfig`. Feast joins a transaction at
time ``t`` to the latest snapshot at or before ``t``, which is what the online store
holds after a daily ``materialize-incremental``, so training and serving see the same
values. Days count from the stream's first UTC midnight; the snapshot after day ``d``
is ``T = start + (d + 1)`` days and a ``w``-day window covers days ``d - w + 1 .. d``.

Terminal fraud risk only counts labels older than the label delay (a transaction's label
is known ``label_delay_days`` after it happened); a transaction whose ``is_fraud`` is NULL
(no chargeback on record) is legitimate by then: banks post frauds, not the legitimate
majority, so this is also how the retraining reads production labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from training.inputs.feature_tables import (
    FeatureConfig,
    customer_feature_names,
    terminal_feature_names,
)

MICROS_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class StreamDays:
    """The stream's first UTC midnight (epoch microseconds) and its number of days."""

    start: int
    n_days: int

    @classmethod
    def of(cls, transactions: DataFrame) -> StreamDays:
        micros = F.unix_micros("timestamp")
        row = transactions.agg(F.min(micros).alias("first"), F.max(micros).alias("last")).first()
        if row is None or row["first"] is None:
            raise ValueError("the feature job needs at least one transaction")
        start = int(row["first"]) // MICROS_PER_DAY * MICROS_PER_DAY
        return cls(start, (int(row["last"]) - start) // MICROS_PER_DAY + 1)


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator).otherwise(F.lit(0.0))


def _optional(transactions: DataFrame, column: str, value: Column) -> Column:
    return value if column in transactions.columns else F.lit(0.0)


def _daily_grid(
    transactions: DataFrame, key: str, days: StreamDays, sums: dict[str, Column]
) -> DataFrame:
    """One row per entity and day from its first active day to the stream's last day:
    the day's sums (0 on quiet days)."""
    micros = F.unix_micros("timestamp") - F.lit(days.start)
    dated = transactions.withColumn("day", F.floor(micros / MICROS_PER_DAY).cast("int"))
    daily = dated.groupBy(key, "day").agg(*(value.alias(name) for name, value in sums.items()))
    active = (
        daily.groupBy(key)
        .agg(F.min("day").alias("first"))
        .select(key, F.explode(F.sequence("first", F.lit(days.n_days - 1))).alias("day"))
    )
    return active.join(daily, [key, "day"], "left").fillna(0.0, subset=list(sums))


def _window(key: str, days: int, delay: int = 0) -> WindowSpec:
    """Days ``d - delay - days + 1 .. d - delay`` of the row's day ``d``."""
    spec = Window.partitionBy(key).orderBy("day")
    return spec.rangeBetween(-(delay + days - 1), -delay)


def _snapshot_rows(
    grid: DataFrame, key: str, start: int, columns: dict[str, Column], names: list[str]
) -> DataFrame:
    stamp = F.timestamp_micros(F.lit(start) + (F.col("day") + 1).cast("long") * MICROS_PER_DAY)
    return grid.select(
        key,
        stamp.alias("event_timestamp"),
        *(columns[name].cast("double").alias(name) for name in names),
    )


def customer_snapshots(
    transactions: DataFrame, config: FeatureConfig, days: StreamDays
) -> DataFrame:
    """``customer_features``: counts, amounts, spread, distance, usual hour, online share."""
    seconds_of_day = ((F.unix_micros("timestamp") - F.lit(days.start)) % MICROS_PER_DAY).cast(
        "double"
    ) / 1e6
    angle = F.lit(2 * math.pi) * seconds_of_day / 86_400
    online = (F.col("channel") == "online").cast("double")
    sums = {
        "n": F.count(F.lit(1)).cast("double"),
        "amount": F.sum("amount"),
        "amount_sq": F.sum(F.col("amount") * F.col("amount")),
        "distance": F.sum(
            _optional(transactions, "distance_from_home_km", F.col("distance_from_home_km"))
        ),
        "hour_sin": F.sum(F.sin(angle)),
        "hour_cos": F.sum(F.cos(angle)),
        "online": F.sum(_optional(transactions, "channel", online)),
    }
    grid = _daily_grid(transactions, "customer_id", days, sums)
    columns: dict[str, Column] = {}
    for w in config.windows_days:
        window = _window("customer_id", w)
        count = F.sum("n").over(window)
        columns[f"customer_tx_count_{w}d"] = count
        columns[f"customer_avg_amount_{w}d"] = _ratio(F.sum("amount").over(window), count)
    window30 = _window("customer_id", 30)
    n30 = F.sum("n").over(window30)
    mean30 = _ratio(F.sum("amount").over(window30), n30)
    variance = _ratio(F.sum("amount_sq").over(window30), n30) - mean30 * mean30
    columns["customer_std_amount_30d"] = F.sqrt(F.greatest(variance, F.lit(0.0)))
    columns["customer_avg_distance_30d"] = _ratio(F.sum("distance").over(window30), n30)
    hour_angle = F.atan2(F.sum("hour_sin").over(window30), F.sum("hour_cos").over(window30))
    positive = F.when(hour_angle < 0, hour_angle + 2 * math.pi).otherwise(hour_angle)
    columns["customer_usual_hour_30d"] = F.when(n30 > 0, positive * 24 / (2 * math.pi)).otherwise(
        F.lit(12.0)
    )
    columns["customer_online_share_30d"] = _ratio(F.sum("online").over(window30), n30)
    return _snapshot_rows(grid, "customer_id", days.start, columns, customer_feature_names(config))


def terminal_snapshots(
    transactions: DataFrame, config: FeatureConfig, days: StreamDays
) -> DataFrame:
    """``terminal_features``: counts, and fraud risk from labels older than the delay."""
    sums = {
        "n": F.count(F.lit(1)).cast("double"),
        # Every transaction of a delayed window is older than the label delay: one without a
        # label (NULL in the system of record) had no chargeback in time, so it counts as
        # legitimate, as the retraining's labels do (system_of_record.export.mature_labels).
        "labelled": F.count(F.lit(1)).cast("double"),
        "fraud": F.coalesce(F.sum(F.col("is_fraud").cast("double")), F.lit(0.0)),
    }
    grid = _daily_grid(transactions, "terminal_id", days, sums)
    delay = config.label_delay_days
    columns: dict[str, Column] = {}
    for w in config.windows_days:
        columns[f"terminal_tx_count_{w}d"] = F.sum("n").over(_window("terminal_id", w))
        delayed = _window("terminal_id", w, delay)
        columns[f"terminal_fraud_risk_{w}d"] = _ratio(
            F.sum("fraud").over(delayed), F.sum("labelled").over(delayed)
        )
    return _snapshot_rows(grid, "terminal_id", days.start, columns, terminal_feature_names(config))
