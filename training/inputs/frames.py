"""The training set read back as arrays: feature matrix, labels and row metadata per split
part (:class:`Frame`), and the cores a stage may use. Library of the modelling stages."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "is_fraud"  # the training set's label column
META = ("transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "fraud_scenario")


def available_cores() -> int:
    """CPU cores this process may use (the container's or the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Frame:
    """Rows of one split part: raw features (NaN = missing), labels, metadata."""

    x: np.ndarray
    y: np.ndarray
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)

    @property
    def days(self) -> np.ndarray:
        """Calendar day (UTC) of every row, for per-day alert budgets."""
        ts = pd.to_datetime(self.meta["timestamp"], utc=True)
        return ts.dt.floor("D").to_numpy()

    @property
    def n_days(self) -> int:
        return max(1, len(np.unique(self.days)))

    def subset(self, mask: np.ndarray) -> Frame:
        return Frame(self.x[mask], self.y[mask], self.meta[mask].reset_index(drop=True))

    @classmethod
    def concat(cls, frames: list[Frame]) -> Frame:
        """Parts one after another (train then validation: still in time order)."""
        return cls(
            np.concatenate([f.x for f in frames]),
            np.concatenate([f.y for f in frames]),
            pd.concat([f.meta for f in frames], ignore_index=True),
        )

    def with_labels(self, y: np.ndarray) -> Frame:
        return Frame(self.x, np.asarray(y, dtype=np.int8), self.meta)


def read_features(training_set_dir: Path) -> list[str]:
    names: list[str] = json.loads((training_set_dir / "features.json").read_text())["features"]
    return names


def to_frame(table: pd.DataFrame, features: list[str]) -> Frame:
    meta = table[[c for c in META if c in table]].reset_index(drop=True)
    return Frame(
        table[features].to_numpy(dtype=np.float64),
        table[LABEL].to_numpy(dtype=np.int8),
        meta,
    )


def load_parts(
    training_set_dir: Path, period: str, parts: tuple[str, ...]
) -> tuple[list[str], dict[str, Frame]]:
    """The feature list and one :class:`Frame` per requested split part of a period."""
    features = read_features(training_set_dir)
    table = pd.read_parquet(training_set_dir / f"{period}.parquet")
    frames = {part: to_frame(table[table["part"] == part], features) for part in parts}
    return features, frames
