"""Time-ordered split of the reference period: burn-in, train, validation, gap, test.

No reported number ever comes from a random split. The gap between validation and test
equals the label delay: when the model is deployed at the start of the test period, the
labels of the last ``gap_days`` are not known yet, so they cannot be trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PARTS = ("burn_in", "train", "validation", "gap", "test")


@dataclass(frozen=True)
class TimeSplit:
    """Day counts of each part, from ``start``; ``params.yaml`` section ``split``."""

    start: pd.Timestamp
    burn_in_days: int
    train_days: int
    val_days: int
    gap_days: int
    test_days: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TimeSplit:
        """Build from the full parameter file (``simulate.start_date`` and ``split``)."""
        return cls(
            start=pd.Timestamp(params["simulate"]["start_date"], tz="UTC"), **params["split"]
        )

    def __post_init__(self) -> None:
        if min(self.train_days, self.val_days, self.test_days) < 1:
            raise ValueError("train, validation and test need at least one day each")
        if min(self.burn_in_days, self.gap_days) < 0:
            raise ValueError("burn-in and gap cannot be negative")

    @property
    def total_days(self) -> int:
        return self.burn_in_days + self.train_days + self.val_days + self.gap_days + self.test_days

    def boundaries(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        """``[start, end)`` of every part."""
        edges = np.cumsum(
            [0, self.burn_in_days, self.train_days, self.val_days, self.gap_days, self.test_days]
        )
        return {
            part: (self.start + pd.Timedelta(days=int(a)), self.start + pd.Timedelta(days=int(b)))
            for part, a, b in zip(PARTS, edges[:-1], edges[1:], strict=True)
        }

    def assign(self, timestamps: pd.Series) -> np.ndarray:
        """The part of each timestamp (``"after"`` past the test period, ``"before"`` ahead)."""
        ts = pd.to_datetime(timestamps, utc=True)
        labels = np.full(len(ts), "after", dtype=object)
        labels[(ts < self.start).to_numpy()] = "before"
        for part, (lo, hi) in self.boundaries().items():
            labels[((ts >= lo) & (ts < hi)).to_numpy()] = part
        return labels
