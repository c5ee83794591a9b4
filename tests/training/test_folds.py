"""Prequential time folds: no future row in any training fold, the gap honoured, windows in
order and expanding training history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.modelling.folds import FoldConfig, prequential_folds


def _rows(days: int = 60, per_day: int = 50, seed: int = 0) -> tuple[pd.Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-06", tz="UTC")
    seconds = np.sort(rng.uniform(0, days * 86_400, days * per_day))
    ts = pd.Series(start + pd.to_timedelta(seconds, unit="s"))
    y = (rng.random(len(ts)) < 0.05).astype(np.int8)
    return ts, y


@pytest.mark.parametrize("gap", [0, 3, 7])
def test_no_training_row_is_in_or_within_the_gap_before_its_window(gap: int) -> None:
    ts, y = _rows()
    folds = prequential_folds(ts, y, FoldConfig(folds=3, window_days=7, gap_days=gap))
    for fold in folds:
        train_ts, window_ts = ts[fold.train], ts[fold.window]
        assert train_ts.max() < window_ts.min() - pd.Timedelta(days=gap)
        assert train_ts.max() < fold.train_end <= fold.window_start - pd.Timedelta(days=gap)
        assert not np.any(fold.train & fold.window)
        # Every row in between is in neither: the gap is left out, not moved elsewhere.
        between = (ts >= fold.train_end) & (ts < fold.window_start)
        assert not np.any(fold.train[between.to_numpy()])
        assert between.sum() > 0 if gap else between.sum() == 0


def test_windows_are_the_last_days_in_order_and_history_expands() -> None:
    ts, y = _rows(days=60)
    folds = prequential_folds(ts, y, FoldConfig(folds=3, window_days=7, gap_days=7))
    assert [f.index for f in folds] == [1, 2, 3]
    # Whole-day windows end at the UTC midnight after the last row.
    assert folds[-1].window_end == ts.max().floor("D") + pd.Timedelta(days=1)
    assert folds[-1].window[ts.to_numpy() == ts.max()].all()
    for earlier, later in zip(folds, folds[1:], strict=False):
        assert earlier.window_end == later.window_start
        assert earlier.train.sum() < later.train.sum()
        assert np.all(later.train[earlier.train])  # expanding: nothing dropped
    for fold in folds:
        assert fold.window_start.hour == 0 and (fold.window_end - fold.window_start).days == 7
        assert np.all(ts[fold.window] >= fold.window_start)
        assert np.all(ts[fold.window] < fold.window_end)


def test_fractional_days_keep_the_last_row_in_the_last_window() -> None:
    ts, y = _rows(days=2, per_day=3000)
    folds = prequential_folds(ts, y, FoldConfig(folds=2, window_days=0.2, gap_days=0))
    assert folds[-1].window[np.argmax(ts.to_numpy())]
    assert folds[0].window_end == folds[1].window_start
    assert folds[1].train_end == folds[1].window_start


def test_a_fold_without_both_classes_is_refused_with_a_clear_message() -> None:
    ts, y = _rows()
    y[:] = 0
    y[:100] = 1  # fraud only in the first days: no window has any
    with pytest.raises(ValueError, match=r"fold 1: its window must hold fraud and legitimate"):
        prequential_folds(ts, y, FoldConfig(folds=3, window_days=7, gap_days=7))
    ts, y = _rows(days=20)
    with pytest.raises(ValueError, match="fold 1: its training rows must hold"):
        prequential_folds(ts, y, FoldConfig(folds=3, window_days=7, gap_days=7))


def test_the_one_window_protocol_is_the_validation_part() -> None:
    ts, y = _rows(days=56)
    day = ((ts - ts.min().floor("D")) // pd.Timedelta(days=1)).to_numpy()
    (fold,) = prequential_folds(ts, y, FoldConfig(folds=1, window_days=14, gap_days=0))
    assert np.array_equal(fold.window, day >= 42)
    assert np.array_equal(fold.train, day < 42)


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        FoldConfig(folds=0)
    with pytest.raises(ValueError):
        FoldConfig(window_days=0)
