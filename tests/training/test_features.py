"""The batch feature job (Spark) is point-in-time correct.

A snapshot stamped T summarises only transactions before T, and terminal risk only labels
older than T minus the label delay. Checked against a brute-force recomputation, and by
changing the future and showing the snapshot does not move.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.featurejob.job import snapshot_frames
from training.inputs.feature_tables import (
    FeatureConfig,
    customer_feature_names,
    terminal_feature_names,
)


def _sample_snapshots(table: pd.DataFrame, n: int = 40) -> pd.DataFrame:
    return table.sample(n=n, random_state=0)


def test_columns_match_the_declared_names(
    tiny_tables: tuple[pd.DataFrame, pd.DataFrame], feature_config: FeatureConfig
) -> None:
    customers, terminals = tiny_tables
    assert list(customers.columns[2:]) == customer_feature_names(feature_config)
    assert list(terminals.columns[2:]) == terminal_feature_names(feature_config)
    assert not customers.isna().any().any() and not terminals.isna().any().any()


def test_customer_windows_equal_brute_force(
    tiny_stream: pd.DataFrame, tiny_tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    customers, _ = tiny_tables
    for row in _sample_snapshots(customers).itertuples():
        mine = tiny_stream[tiny_stream.customer_id == row.customer_id]
        for w in (1, 7, 30):
            window = mine[
                (mine.timestamp >= row.event_timestamp - pd.Timedelta(days=w))
                & (mine.timestamp < row.event_timestamp)
            ]
            assert getattr(row, f"customer_tx_count_{w}d") == len(window)
            expected = window.amount.mean() if len(window) else 0.0
            assert getattr(row, f"customer_avg_amount_{w}d") == pytest.approx(expected)


def test_terminal_risk_equals_brute_force_with_label_delay(
    tiny_stream: pd.DataFrame,
    tiny_tables: tuple[pd.DataFrame, pd.DataFrame],
    feature_config: FeatureConfig,
) -> None:
    _, terminals = tiny_tables
    delay = pd.Timedelta(days=feature_config.label_delay_days)
    busy = terminals[terminals.terminal_fraud_risk_30d > 0]
    for row in pd.concat([_sample_snapshots(terminals, 20), busy.head(20)]).itertuples():
        mine = tiny_stream[tiny_stream.terminal_id == row.terminal_id]
        known_until = row.event_timestamp - delay
        for w in (1, 7, 30):
            window = mine[
                (mine.timestamp >= known_until - pd.Timedelta(days=w))
                & (mine.timestamp < known_until)
            ]
            expected = window.is_fraud.mean() if len(window) else 0.0
            assert getattr(row, f"terminal_fraud_risk_{w}d") == pytest.approx(expected)


def _snapshot(table: pd.DataFrame, key: str, entity: str, at: pd.Timestamp) -> pd.Series:
    rows = table[(table[key] == entity) & (table.event_timestamp == at)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_future_transactions_never_change_a_snapshot(
    spark: Any, tiny_stream: pd.DataFrame, feature_config: FeatureConfig
) -> None:
    t = tiny_stream.timestamp.iloc[len(tiny_stream) // 2].floor("D")
    row = tiny_stream[tiny_stream.timestamp < t].iloc[-1]
    future = tiny_stream.copy()
    after = future.timestamp >= t
    future.loc[after, "amount"] *= 50  # rewrite everything at or after t
    future.loc[after, "is_fraud"] = 1
    before, _ = snapshot_frames(spark, tiny_stream, feature_config)
    changed, _ = snapshot_frames(spark, future, feature_config)
    a = _snapshot(before, "customer_id", row.customer_id, t)
    b = _snapshot(changed, "customer_id", row.customer_id, t)
    pd.testing.assert_series_equal(a, b)


def test_terminal_risk_ignores_labels_newer_than_the_delay(
    spark: Any, tiny_stream: pd.DataFrame, feature_config: FeatureConfig
) -> None:
    delay = pd.Timedelta(days=feature_config.label_delay_days)
    t = tiny_stream.timestamp.iloc[int(len(tiny_stream) * 0.6)].floor("D")
    terminal = tiny_stream[tiny_stream.timestamp < t - delay].terminal_id.value_counts().index[0]
    at_terminal = tiny_stream.terminal_id == terminal
    _, base = snapshot_frames(spark, tiny_stream, feature_config)

    recent = tiny_stream.copy()
    recent.loc[at_terminal & (recent.timestamp >= t - delay), "is_fraud"] = 1
    _, with_recent = snapshot_frames(spark, recent, feature_config)
    pd.testing.assert_series_equal(
        _snapshot(base, "terminal_id", terminal, t),
        _snapshot(with_recent, "terminal_id", terminal, t),
    )

    older = tiny_stream.copy()
    window = (
        at_terminal
        & (older.timestamp < t - delay)
        & (older.timestamp >= t - delay - pd.Timedelta(days=30))
    )
    older.loc[window, "is_fraud"] = 1
    _, with_older = snapshot_frames(spark, older, feature_config)
    assert _snapshot(with_older, "terminal_id", terminal, t).terminal_fraud_risk_30d == 1.0
    assert _snapshot(base, "terminal_id", terminal, t).terminal_fraud_risk_30d < 1.0


def test_unlabelled_transactions_past_the_delay_count_as_legitimate(
    spark: Any, feature_config: FeatureConfig
) -> None:
    """The system of record's export has NULL ``is_fraud`` where no chargeback came: past
    the label delay (every row of a delayed window) that is a legitimate transaction."""
    day = pd.Timedelta(days=1)
    start = pd.Timestamp("2025-03-01", tz="UTC")
    # T1 on days 0-3; T2's transaction on day 12 makes the stream (and T1's snapshots) last.
    stamps = [start + day * (d + 0.5) for d in (0, 1, 2, 3, 12)]
    stream = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c", "d", "e"],
            "timestamp": pd.Series(stamps).astype("datetime64[us, UTC]"),
            "customer_id": ["C1"] * 4 + ["C2"],
            "terminal_id": ["T1"] * 4 + ["T2"],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            "is_fraud": pd.array([1, None, 0, None, 0], dtype="Int8"),
        }
    )
    _, terminals = snapshot_frames(spark, stream, feature_config)
    delay = pd.Timedelta(days=feature_config.label_delay_days)
    row = _snapshot(terminals, "terminal_id", "T1", start + 4 * day + delay)
    assert (row.terminal_tx_count_1d, row.terminal_tx_count_30d) == (0.0, 4.0)
    # a is a fraud; c is labelled legitimate; b and d had no chargeback: legitimate too.
    assert row.terminal_fraud_risk_7d == pytest.approx(0.25)
    assert row.terminal_fraud_risk_1d == 0.0  # day 3 holds only d
    early = _snapshot(terminals, "terminal_id", "T1", start + 2 * day + delay)
    assert early.terminal_fraud_risk_30d == pytest.approx(0.5)  # a fraud, b legitimate


def test_no_snapshot_before_an_entity_first_appears(
    tiny_stream: pd.DataFrame, tiny_tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    customers, _ = tiny_tables
    first_seen = tiny_stream.groupby("customer_id").timestamp.min()
    first_snapshot = customers.groupby("customer_id").event_timestamp.min()
    assert (first_snapshot > first_seen.loc[first_snapshot.index]).all()
    assert np.all(first_snapshot - first_seen.loc[first_snapshot.index] <= pd.Timedelta(days=1))


def test_windows_without_7_and_30_days_are_refused() -> None:
    with pytest.raises(ValueError):
        FeatureConfig(windows_days=(1, 14))
