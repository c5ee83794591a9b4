"""Prequential (expanding-window) time folds over the rows before the test gap.

The Fraud Detection Handbook validates fraud models this way: every fold trains on all
the rows up to a cut-off, skips a gap as long as the label delay (the labels of the last
days before a model ships are not known yet), and validates on the window after the gap.
The windows are the last ``folds`` windows of ``window_days`` before the end of the
training time, so fold ``k`` trains on more history than fold ``k - 1``; no training row
of a fold is later than its window, and none is within ``gap_days`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class FoldConfig:
    """``params.yaml`` section ``train.selection``."""

    folds: int = 3
    window_days: float = 7.0
    gap_days: float = 7.0
    # Refit the final members on all training time (True), or keep the last fold's members
    # and its window for the post-hoc parts (False: the one-window protocol of the studies).
    refit: bool = True

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError("selection.folds must be at least 1")
        if self.window_days <= 0 or self.gap_days < 0:
            raise ValueError("selection.window_days must be > 0 and gap_days >= 0")


@dataclass(frozen=True)
class TimeFold:
    """One fold: boolean row masks over the training rows and the window's edges."""

    index: int
    train: np.ndarray
    window: np.ndarray
    train_end: pd.Timestamp  # exclusive: every training row is earlier
    window_start: pd.Timestamp
    window_end: pd.Timestamp  # exclusive

    def describe(self, y: np.ndarray) -> dict[str, object]:
        return {
            "fold": self.index,
            "train_rows": int(self.train.sum()),
            "train_fraud": int(y[self.train].sum()),
            "train_end": self.train_end.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "window_rows": int(self.window.sum()),
            "window_fraud": int(y[self.window].sum()),
        }


def _whole_days(value: float) -> bool:
    return float(value).is_integer()


def prequential_folds(
    timestamps: pd.Series | pd.DatetimeIndex | np.ndarray,
    y: np.ndarray,
    config: FoldConfig,
) -> list[TimeFold]:
    """The folds over rows with these timestamps and labels, oldest window first.

    With whole-day windows and gaps the edges fall on UTC midnights, so a window of the
    simulator's data is a set of whole days. Raises ``ValueError`` when a fold has no
    training row, or a training set or window lacks one of the classes.
    """
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    if len(ts) == 0:
        raise ValueError("no rows to fold")
    window = pd.Timedelta(days=config.window_days)
    gap = pd.Timedelta(days=config.gap_days)
    last = ts.max()
    if _whole_days(config.window_days) and _whole_days(config.gap_days):
        end = last.floor("D") + DAY
    else:
        end = last + pd.Timedelta(microseconds=1)
    folds = []
    for k in range(config.folds):
        window_end = end - (config.folds - 1 - k) * window
        window_start = window_end - window
        train_end = window_start - gap
        train = np.asarray(ts < train_end)
        in_window = np.asarray((ts >= window_start) & (ts < window_end))
        fold = TimeFold(k + 1, train, in_window, train_end, window_start, window_end)
        for part, mask in (("training rows", train), ("window", in_window)):
            labels = y[mask]
            if len(labels) == 0 or labels.min() == labels.max():
                raise ValueError(
                    f"fold {k + 1}: its {part} must hold fraud and legitimate rows "
                    f"(window {window_start:%Y-%m-%d %H:%M} to {window_end:%Y-%m-%d %H:%M}, "
                    f"{int(mask.sum())} rows, {int(labels.sum()) if len(labels) else 0} fraud); "
                    "use fewer or shorter folds, or a shorter gap"
                )
        folds.append(fold)
    return folds


def external_folds(base: FoldConfig, edges: dict[str, pd.Timestamp], gap_days: float) -> FoldConfig:
    """The search's time folds on a data set of any span: ``base.folds`` windows that
    together cover the validation part (the last 20 % of the time before the gap), each
    after a gap of ``gap_days`` (the data set's label delay)."""
    validation_days = (edges["gap_start"] - edges["validation_start"]) / pd.Timedelta(days=1)
    return FoldConfig(
        folds=base.folds,
        window_days=validation_days / base.folds,
        gap_days=gap_days,
        refit=base.refit,
    )
