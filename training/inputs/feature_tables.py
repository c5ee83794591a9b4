"""The batch feature job's computation: daily point-in-time snapshots of customer and
terminal features from a transaction stream.

For every entity and every day boundary ``T`` after its first transaction, one row with
``event_timestamp = T`` summarises the transactions strictly before ``T``. Feast joins a
transaction at time ``t`` to the latest snapshot at or before ``t``, which is exactly
what the online store holds after a daily ``materialize-incremental``, so training and
serving see the same values. Terminal fraud risk only counts labels older than the label
delay: a transaction's label is known ``label_delay_days`` after it happened.

The ``features`` stage writes these tables for Feast; ``training.external`` computes them
on public data sets. Stages import this module; it imports no stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class FeatureConfig:
    """Window lengths and the label delay; ``params.yaml`` section ``features``."""

    windows_days: tuple[int, ...] = (1, 7, 30)
    label_delay_days: int = 7

    def __post_init__(self) -> None:
        if 30 not in self.windows_days or 7 not in self.windows_days:
            raise ValueError("windows_days must include 7 and 30 (request features use them)")


def customer_feature_names(config: FeatureConfig) -> list[str]:
    names = [f"customer_tx_count_{w}d" for w in config.windows_days]
    names += [f"customer_avg_amount_{w}d" for w in config.windows_days]
    return names + [
        "customer_std_amount_30d",
        "customer_avg_distance_30d",
        "customer_usual_hour_30d",
        "customer_online_share_30d",
    ]


def terminal_feature_names(config: FeatureConfig) -> list[str]:
    return [f"terminal_tx_count_{w}d" for w in config.windows_days] + [
        f"terminal_fraud_risk_{w}d" for w in config.windows_days
    ]


@dataclass
class _Daily:
    """Per-entity, per-day sums with a leading zero day: ``cum[:, k]`` sums days ``< k``."""

    ids: np.ndarray
    first_day: np.ndarray
    cum: dict[str, np.ndarray]

    def window(self, name: str, days: int, delay: int = 0) -> np.ndarray:
        """Sum over days ``[k - delay - days, k - delay)`` for every snapshot ``k = 1..D``."""
        cum = self.cum[name]
        k = np.arange(1, cum.shape[1])
        hi = np.clip(k - delay, 0, None)
        lo = np.clip(k - delay - days, 0, None)
        sums: np.ndarray = cum[:, hi] - cum[:, lo]
        return sums


def _daily_sums(
    entity: pd.Series, day: np.ndarray, n_days: int, values: dict[str, np.ndarray]
) -> _Daily:
    codes, ids = pd.factorize(entity, sort=True)
    flat = codes * n_days + day
    size = len(ids) * n_days
    cum = {}
    for name, weights in values.items():
        daily = np.bincount(flat, weights=weights, minlength=size).reshape(len(ids), n_days)
        cum[name] = np.concatenate([np.zeros((len(ids), 1)), np.cumsum(daily, axis=1)], axis=1)
    first_day = np.full(len(ids), n_days, dtype=np.int64)
    np.minimum.at(first_day, codes, day)
    return _Daily(np.asarray(ids, dtype=object), first_day, cum)


def _snapshot_frame(
    key: str, daily: _Daily, start: pd.Timestamp, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Long table of snapshots ``k`` (day boundary ``start + k days``) after first activity."""
    n_entities, n_snapshots = next(iter(columns.values())).shape
    snapshot = np.arange(1, n_snapshots + 1)
    keep = snapshot[None, :] > daily.first_day[:, None]
    rows, cols = np.nonzero(keep)
    frame = pd.DataFrame(
        {
            key: daily.ids[rows],
            "event_timestamp": (start + pd.to_timedelta(snapshot[cols], unit="D")).astype(
                "datetime64[us, UTC]"
            ),
        }
    )
    for name, values in columns.items():
        frame[name] = values[rows, cols].astype(np.float64)
    return frame


def compute_feature_tables(
    transactions: pd.DataFrame, config: FeatureConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer and terminal snapshot tables from a transaction stream.

    ``transactions`` needs ``customer_id, terminal_id, timestamp (UTC), amount, is_fraud``;
    ``distance_from_home_km`` and ``channel`` are used when present.
    """
    ts = pd.to_datetime(transactions["timestamp"], utc=True)
    start = ts.min().floor("D")
    seconds = (ts - start).dt.total_seconds().to_numpy()
    day = (seconds // SECONDS_PER_DAY).astype(np.int64)
    n_days = int(day.max()) + 1
    amount = transactions["amount"].to_numpy(dtype=np.float64)
    ones = np.ones(len(transactions))
    hour_angle = 2 * np.pi * (seconds % SECONDS_PER_DAY) / SECONDS_PER_DAY
    distance = (
        transactions["distance_from_home_km"].to_numpy(dtype=np.float64)
        if "distance_from_home_km" in transactions
        else np.zeros(len(transactions))
    )
    online = (
        (transactions["channel"] == "online").to_numpy(dtype=np.float64)
        if "channel" in transactions
        else np.zeros(len(transactions))
    )

    cust = _daily_sums(
        transactions["customer_id"],
        day,
        n_days,
        {
            "n": ones,
            "amount": amount,
            "amount_sq": amount**2,
            "distance": distance,
            "hour_sin": np.sin(hour_angle),
            "hour_cos": np.cos(hour_angle),
            "online": online,
        },
    )
    customer_cols: dict[str, np.ndarray] = {}
    for w in config.windows_days:
        count = cust.window("n", w)
        customer_cols[f"customer_tx_count_{w}d"] = count
        customer_cols[f"customer_avg_amount_{w}d"] = _ratio(cust.window("amount", w), count)
    n30 = customer_cols["customer_tx_count_30d"]
    mean30 = customer_cols["customer_avg_amount_30d"]
    variance = _ratio(cust.window("amount_sq", 30), n30) - mean30**2
    customer_cols["customer_std_amount_30d"] = np.sqrt(np.clip(variance, 0, None))
    customer_cols["customer_avg_distance_30d"] = _ratio(cust.window("distance", 30), n30)
    angle = np.arctan2(cust.window("hour_sin", 30), cust.window("hour_cos", 30))
    usual_hour = np.mod(angle, 2 * np.pi) * 24 / (2 * np.pi)
    customer_cols["customer_usual_hour_30d"] = np.where(n30 > 0, usual_hour, 12.0)
    customer_cols["customer_online_share_30d"] = _ratio(cust.window("online", 30), n30)

    term = _daily_sums(
        transactions["terminal_id"],
        day,
        n_days,
        {"n": ones, "fraud": transactions["is_fraud"].to_numpy(dtype=np.float64)},
    )
    terminal_cols: dict[str, np.ndarray] = {}
    delay = config.label_delay_days
    for w in config.windows_days:
        terminal_cols[f"terminal_tx_count_{w}d"] = term.window("n", w)
    for w in config.windows_days:
        labelled = term.window("n", w, delay=delay)
        terminal_cols[f"terminal_fraud_risk_{w}d"] = _ratio(
            term.window("fraud", w, delay=delay), labelled
        )

    customer_cols = {name: customer_cols[name] for name in customer_feature_names(config)}
    terminal_cols = {name: terminal_cols[name] for name in terminal_feature_names(config)}
    customers = _snapshot_frame("customer_id", cust, start, customer_cols)
    terminals = _snapshot_frame("terminal_id", term, start, terminal_cols)
    return customers, terminals


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.divide(
        numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0
    )
    return out
