"""Public fraud data sets (ULB, Fraud Detection Handbook) read into a :class:`Frame` with the
project's features, and their time-ordered split; the schemas and the split are described in
:mod:`training.external`, which trains on them, as does :mod:`training.benchmark`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.request_features import NEW_CUSTOMER, REQUEST_FEATURES, compute_request_features
from training.featurejob.job import snapshot_frames
from training.featurejob.session import SparkConfig, spark_in_use
from training.inputs.feast_store import SNAPSHOT_TTL
from training.inputs.feature_tables import (
    FeatureConfig,
    customer_feature_names,
    terminal_feature_names,
)
from training.inputs.frames import Frame

SCHEMAS = ("ulb", "handbook")
ULB_V = tuple(f"V{i}" for i in range(1, 29))
REQUIRED: dict[str, tuple[str, ...]] = {
    "ulb": ("Time", *ULB_V, "Amount", "Class"),
    "handbook": (
        "TRANSACTION_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "TX_AMOUNT",
        "TX_FRAUD",
    ),
}
OPTIONAL: dict[str, tuple[str, ...]] = {"ulb": (), "handbook": ("TX_FRAUD_SCENARIO",)}
ULB_ORIGIN = pd.Timestamp("2013-09-01", tz="UTC")
VALIDATION_FRACTION = 0.2
DEFAULT_TEST_FRACTION = 0.2
PARTS = ("train", "validation", "gap", "test")
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class Dataset:
    """Every row of a data set in time order, as one :class:`Frame`, and its feature names."""

    frame: Frame
    features: list[str]


# --- reading -----------------------------------------------------------------------------


def read_table(path: Path, schema: str) -> pd.DataFrame:
    """The schema's columns of a CSV (``.gz`` and other compressions inferred).

    Raises ``SystemExit`` naming the missing columns, or on labels other than 0/1.
    """
    if not path.is_file():
        raise SystemExit(f"external: no such file {path}")
    header = pd.read_csv(path, nrows=0, compression="infer").columns
    missing = [c for c in REQUIRED[schema] if c not in header]
    if missing:
        raise SystemExit(
            f"external: {path} lacks column(s) {', '.join(missing)} "
            f"required by schema {schema!r} (has: {', '.join(map(str, header))})"
        )
    wanted = [*REQUIRED[schema], *(c for c in OPTIONAL[schema] if c in header)]
    table = pd.read_csv(path, usecols=wanted, compression="infer")
    label = REQUIRED[schema][-1]
    if not table[label].isin([0, 1]).all():
        raise SystemExit(f"external: column {label} must hold 0/1 labels only")
    return table


# --- features ----------------------------------------------------------------------------


def ulb_dataset(raw: pd.DataFrame) -> Dataset:
    """ULB rows as a frame: V1..V28, amount, log amount and hour of day."""
    raw = raw.sort_values("Time", kind="stable")
    seconds = raw["Time"].to_numpy(dtype=np.float64)
    amount = raw["Amount"].to_numpy(dtype=np.float64)
    features = [*ULB_V, "amount", "log_amount", "hour_of_day"]
    x = np.empty((len(raw), len(features)), dtype=np.float64)
    x[:, : len(ULB_V)] = raw[list(ULB_V)].to_numpy(dtype=np.float64)
    x[:, len(ULB_V)] = amount
    x[:, len(ULB_V) + 1] = np.log1p(np.clip(amount, 0.0, None))
    x[:, len(ULB_V) + 2] = np.mod(seconds, 86_400) / 3600.0
    row_id = raw.index.to_numpy().astype(str)
    meta = pd.DataFrame(
        {
            "transaction_id": row_id,
            "timestamp": ULB_ORIGIN + pd.to_timedelta(seconds, unit="s"),
            "customer_id": row_id,  # no card ids: every row is its own card
            "amount": amount,
        }
    )
    return Dataset(Frame(x, raw["Class"].to_numpy(dtype=np.int8), meta), features)


def handbook_transactions(raw: pd.DataFrame) -> pd.DataFrame:
    """Handbook columns mapped to the project's transaction columns, sorted by time."""
    transactions = pd.DataFrame(
        {
            "transaction_id": raw["TRANSACTION_ID"].astype(str),
            "timestamp": pd.to_datetime(raw["TX_DATETIME"], utc=True),
            "customer_id": raw["CUSTOMER_ID"].astype(str),
            "terminal_id": raw["TERMINAL_ID"].astype(str),
            "amount": raw["TX_AMOUNT"].astype(np.float64),
            "is_fraud": raw["TX_FRAUD"].astype(np.int8),
        }
    )
    if "TX_FRAUD_SCENARIO" in raw:
        transactions["fraud_scenario"] = raw["TX_FRAUD_SCENARIO"].astype(str)
    return transactions.sort_values("timestamp", kind="stable").reset_index(drop=True)


def point_in_time_join(
    transactions: pd.DataFrame, snapshots: pd.DataFrame, key: str, ttl: pd.Timedelta = SNAPSHOT_TTL
) -> pd.DataFrame:
    """Snapshot columns of ``snapshots`` for every transaction, in the transactions' order.

    Each transaction gets its entity's latest snapshot with ``event_timestamp <=`` its
    timestamp and at most ``ttl`` older (Feast's point-in-time join), else NaN.
    """
    left = pd.DataFrame(
        {
            "_row": np.arange(len(transactions)),
            key: transactions[key].to_numpy(),
            "timestamp": transactions["timestamp"].array,
        }
    ).sort_values("timestamp", kind="stable")
    right = snapshots.assign(
        event_timestamp=snapshots["event_timestamp"].astype(left["timestamp"].dtype)
    ).sort_values("event_timestamp", kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        left_on="timestamp",
        right_on="event_timestamp",
        by=key,
        direction="backward",
        tolerance=ttl,
    )
    columns = [c for c in snapshots.columns if c not in (key, "event_timestamp")]
    out: pd.DataFrame = (
        joined.sort_values("_row")[columns].astype(np.float64).reset_index(drop=True)
    )
    return out


def handbook_dataset(
    raw: pd.DataFrame, config: FeatureConfig, spark: SparkConfig | None = None
) -> Dataset:
    """Handbook rows as a frame: batch customer/terminal features (the Spark feature job's
    snapshots) plus request features."""
    transactions = handbook_transactions(raw)
    with spark_in_use(spark or SparkConfig()) as session:
        customers, terminals = snapshot_frames(session, transactions, config)
    customer = point_in_time_join(transactions, customers, "customer_id")
    terminal = point_in_time_join(transactions, terminals, "terminal_id")
    amount = transactions["amount"].to_numpy(dtype=np.float64)
    epoch = ((transactions["timestamp"] - _EPOCH) // pd.Timedelta(seconds=1)).to_numpy()
    request = compute_request_features(
        {
            "amount": amount,
            "tx_epoch_seconds": epoch,
            **{name: customer[name].to_numpy() for name in NEW_CUSTOMER},
        }
    )
    customer_names = customer_feature_names(config)
    terminal_names = terminal_feature_names(config)
    features = [*customer_names, *terminal_names, *REQUEST_FEATURES]
    x = np.empty((len(transactions), len(features)), dtype=np.float64)
    x[:, : len(customer_names)] = customer[customer_names].to_numpy()
    x[:, len(customer_names) : len(customer_names) + len(terminal_names)] = terminal[
        terminal_names
    ].to_numpy()
    for i, name in enumerate(REQUEST_FEATURES):
        x[:, len(customer_names) + len(terminal_names) + i] = request[name]
    meta_columns = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount"]
    if "fraud_scenario" in transactions:
        meta_columns.append("fraud_scenario")
    meta = transactions[meta_columns]
    return Dataset(Frame(x, transactions["is_fraud"].to_numpy(dtype=np.int8), meta), features)


def build_dataset(raw: pd.DataFrame, schema: str, params: dict[str, Any]) -> Dataset:
    if schema == "ulb":
        return ulb_dataset(raw)
    features = params["features"]
    return handbook_dataset(
        raw, FeatureConfig.from_params(features), SparkConfig.from_params(features)
    )


# --- split -------------------------------------------------------------------------------


def split_boundaries(
    start: pd.Timestamp,
    end: pd.Timestamp,
    test_fraction: float,
    gap_days: float,
    validation_fraction: float = VALIDATION_FRACTION,
) -> dict[str, pd.Timestamp]:
    """Where validation, the gap and the test part start, over the span ``start..end``."""
    if not 0.0 < test_fraction < 1.0:
        raise SystemExit(f"external: --test-fraction must be in (0, 1), got {test_fraction}")
    if gap_days < 0:
        raise SystemExit(f"external: --gap-days cannot be negative, got {gap_days}")
    if not 0.0 < validation_fraction < 1.0:
        raise SystemExit("external: the validation fraction must be in (0, 1)")
    test_start = end - test_fraction * (end - start)
    gap_start = test_start - pd.Timedelta(days=gap_days)
    validation_start = gap_start - validation_fraction * (gap_start - start)
    return {
        "start": start,
        "validation_start": validation_start,
        "gap_start": gap_start,
        "test_start": test_start,
        "end": end,
    }


def time_split(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray,
    test_fraction: float,
    gap_days: float,
    validation_fraction: float = VALIDATION_FRACTION,
) -> np.ndarray:
    """The part (``train``, ``validation``, ``gap`` or ``test``) of every timestamp."""
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    edges = split_boundaries(ts.min(), ts.max(), test_fraction, gap_days, validation_fraction)
    parts = np.full(len(ts), "train", dtype=object)
    parts[ts >= edges["validation_start"]] = "validation"
    parts[ts >= edges["gap_start"]] = "gap"
    parts[ts >= edges["test_start"]] = "test"
    return parts


def describe_parts(frame: Frame, parts: np.ndarray) -> dict[str, dict[str, Any]]:
    """Rows, fraud and first/last timestamp of every split part."""
    ts = pd.to_datetime(frame.meta["timestamp"], utc=True)
    summary: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        mask = parts == part
        times = ts[mask]
        summary[part] = {
            "rows": int(mask.sum()),
            "fraud": int(frame.y[mask].sum()),
            "first": times.min().isoformat() if len(times) else None,
            "last": times.max().isoformat() if len(times) else None,
        }
    return summary


@dataclass(frozen=True)
class TimeParts:
    """A frame split by time: its boundaries, each part's summary, and the part of every row."""

    frame: Frame
    parts: np.ndarray
    edges: dict[str, pd.Timestamp]
    summary: dict[str, dict[str, Any]]

    def part(self, name: str) -> Frame:
        return self.frame.subset(self.parts == name)

    @property
    def training_time(self) -> Frame:
        """Train and validation, in time order: every row before the gap."""
        return Frame.concat([self.part("train"), self.part("validation")])


def split_by_time(frame: Frame, test_fraction: float, gap_days: float) -> TimeParts:
    """The time split of a data set's frame (:func:`time_split`), summarised; callers
    refuse an unusable one with :func:`check_parts`."""
    timestamps = pd.to_datetime(frame.meta["timestamp"], utc=True)
    edges = split_boundaries(timestamps.min(), timestamps.max(), test_fraction, gap_days)
    parts = time_split(timestamps, test_fraction, gap_days)
    return TimeParts(frame, parts, edges, describe_parts(frame, parts))


def check_parts(summary: dict[str, dict[str, Any]]) -> None:
    """Refuse splits the ensemble cannot be trained or evaluated on."""
    for part in ("train", "validation", "test"):
        if summary[part]["rows"] == 0:
            raise SystemExit(
                f"external: the {part} part is empty; lower --gap-days or change "
                f"--test-fraction (parts: { {p: s['rows'] for p, s in summary.items()} })"
            )
    for part in ("train", "validation"):
        rows, fraud = summary[part]["rows"], summary[part]["fraud"]
        if fraud == 0 or fraud == rows:
            raise SystemExit(f"external: the {part} part needs both fraud and legitimate rows")
    if summary["test"]["fraud"] == 0:
        print(
            "external: warning: no fraud in the test part, ranking metrics are undefined",
            flush=True,
        )


def default_gap_days(schema: str, params: dict[str, Any]) -> float:
    """0 days for ULB (no label delay known), the label delay for the Handbook schema."""
    return 0.0 if schema == "ulb" else float(params["features"]["label_delay_days"])
