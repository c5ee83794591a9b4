"""Issue 27's decisions columns on both engines: the migration of a database created
before them, feature bytes, review-queue entries written in the decisions' transaction,
and the recorded period the rule dry-runs read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from system_of_record.period import read_period
from system_of_record.review_queue import queue_items
from system_of_record.rows import LabelRow
from system_of_record.store import RecordStore, RecordUnavailable, open_store
from tests.system_of_record.helpers import T0, decision, make_store

pytestmark = pytest.mark.integration

# The decisions table as issue 26 created it (before the rule and feature columns).
OLD_DECISIONS = """CREATE TABLE decisions (
    transaction_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, terminal_id TEXT NOT NULL,
    tx_time {time} NOT NULL, amount DOUBLE PRECISION NOT NULL, merchant_category TEXT,
    channel TEXT NOT NULL, entry_mode TEXT NOT NULL, is_foreign BOOLEAN NOT NULL,
    distance_from_home_km DOUBLE PRECISION NOT NULL, feature_service TEXT NOT NULL,
    model_version TEXT NOT NULL, fraud_probability DOUBLE PRECISION,
    risk_level TEXT NOT NULL, decision TEXT NOT NULL, decision_source TEXT NOT NULL,
    degraded TEXT NOT NULL, request_id TEXT NOT NULL, scored_at {time} NOT NULL)"""
OLD_ROW = (
    "INSERT INTO decisions VALUES ('old-1', 'C1', 'T1', '2025-03-01T09:00:00+00:00', 5.0, "
    "NULL, 'online', 'chip', FALSE, 1.0, 'fs', 'm0', 0.2, 'LOW', 'approve', 'model', '', "
    "'r', '2025-03-01T09:00:01+00:00')"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    opened = make_store(request, tmp_path)
    yield opened
    opened.close()


def fetch(store: RecordStore, statement: str, *values: Any) -> list[tuple[Any, ...]]:
    with store.transaction() as cursor:
        cursor.execute(store.sql(statement), values)
        return list(cursor.fetchall())


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_database_made_before_the_new_columns_gains_them_and_keeps_its_rows(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "sqlite":
        path = tmp_path / "old.sqlite"
        with sqlite3.connect(path) as connection:
            connection.execute(OLD_DECISIONS.format(time="TIMESTAMP"))
            connection.execute(OLD_ROW)
        url, password = f"sqlite:///{path}", None
    else:
        import psycopg

        url, password = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, password=password.read_text().strip()) as connection:
            connection.execute(OLD_DECISIONS.format(time="TIMESTAMPTZ"))
            connection.execute(OLD_ROW)
    for _ in range(2):  # the second connect finds the columns there: a no-op
        store = open_store(url, password)
        features = np.array([1.5, -2.0, 3.25], dtype="<f4").tobytes()
        store.write_decisions(
            [decision(len(fetch(store, "SELECT 1 FROM decisions")), features=features)]
        )
        store.close()
    store = open_store(url, password)
    rows = fetch(
        store,
        "SELECT transaction_id, model_decision, reasons, rule_set, rules, features, amount "
        "FROM decisions ORDER BY transaction_id",
    )
    store.close()
    assert [row[0] for row in rows] == ["old-1", "tx-1", "tx-2"]
    assert rows[0][1:] == ("", "", "", "", None, 5.0)  # the old row: defaults, no features
    assert rows[1][1:5] == ("approve", "", "2026-12-06.1+lists.3", "")
    assert np.frombuffer(bytes(rows[1][5]), dtype="<f4").tolist() == [1.5, -2.0, 3.25]


def test_features_and_rule_columns_round_trip(store: RecordStore) -> None:
    values = np.array([0.1, 7.0, np.nan, -1e6], dtype="<f4")
    store.write_decisions([decision(1, decided="step_up", features=values.tobytes()), decision(2)])
    rows = fetch(
        store,
        "SELECT model_decision, decision, reasons, rules, features FROM decisions "
        "ORDER BY transaction_id",
    )
    assert rows[0][:4] == ("approve", "step_up", "VELOCITY_CAP", "velocity_cap")
    back = np.frombuffer(bytes(rows[0][4]), dtype="<f4")
    assert back.tobytes() == values.tobytes()  # bit for bit, NaN included
    assert rows[1][4] is None


def test_review_entries_are_written_with_their_decisions_once(store: RecordStore) -> None:
    rows = [decision(i, T0 + timedelta(minutes=i)) for i in range(3)]
    store.write_decisions(rows, [("tx-2", "model_review"), ("tx-0", "rule:velocity_cap")])
    store.write_decisions(rows, [("tx-2", "again")])  # a re-ship: nothing new
    items = queue_items(store, None, 10)
    assert [(item.transaction_id, item.why, item.status) for item in items] == [
        ("tx-0", "rule:velocity_cap", "open"),
        ("tx-2", "model_review", "open"),
    ]  # fmt: skip  (oldest enqueued first: enqueued at the decision's scored_at)
    assert items[0].enqueued_at == rows[0].scored_at
    assert items[1].amount == 12.0 and items[1].customer_id == "C2"


def test_a_failing_write_enqueues_nothing_and_records_nothing(store: RecordStore) -> None:
    broken = decision(2)._replace(customer_id=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(RecordUnavailable):
        store.write_decisions([decision(1), broken], [("tx-1", "model_review")])
    with pytest.raises(RecordUnavailable):  # the queue entry fails: the decisions roll back
        store.write_decisions([decision(1)], [("tx-1", None)])  # type: ignore[list-item]
    assert fetch(store, "SELECT COUNT(*) FROM decisions") == [(0,)]
    assert queue_items(store, None, 10) == []


def test_read_period_bounds_order_limit_and_labels(store: RecordStore) -> None:
    features = np.array([2.0, 3.0], dtype="<f4").tobytes()
    hours = [5, 0, 3, 1, 4, 2]  # written out of order
    rows = [decision(i, T0 + timedelta(hours=i), probability=None if i == 2 else i / 10)
            for i in hours]  # fmt: skip
    rows[0] = rows[0]._replace(features=features)  # tx-5
    before, at_end = decision(90, T0 - timedelta(seconds=1)), decision(91, T0 + timedelta(hours=6))
    store.write_decisions([*rows, before, at_end])
    store.write_labels(
        [LabelRow("tx-3", True, "chargeback", T0), LabelRow("tx-4", False, "review", T0)]
    )

    period = read_period(store, T0, T0 + timedelta(hours=6), limit=100)
    assert period.transaction_id == [f"tx-{i}" for i in range(6)] and not period.truncated
    assert len(period) == 6
    assert period.tx_time == [T0 + timedelta(hours=i) for i in range(6)]
    assert period.label.dtype == np.int8 and period.label.tolist() == [-1, -1, -1, 1, 0, -1]
    assert period.amount.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    assert period.is_foreign.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    probabilities = period.fraud_probability
    assert np.isnan(probabilities[2]) and probabilities[[0, 1, 3]].tolist() == [0.0, 0.1, 0.3]
    assert period.merchant_category[:2] == ["grocery", None]
    assert period.features[5] == features and period.features[:5] == [None] * 5
    assert period.model_decision[0] == "approve" and period.rule_set[0] == "2026-12-06.1+lists.3"

    newest = read_period(store, T0, T0 + timedelta(hours=6), limit=4)
    assert newest.transaction_id == ["tx-2", "tx-3", "tx-4", "tx-5"] and newest.truncated
    assert newest.label.tolist() == [-1, 1, 0, -1]
    exact = read_period(store, T0, T0 + timedelta(hours=6), limit=6)
    assert not exact.truncated and len(exact) == 6
    empty = read_period(store, T0 + timedelta(days=1), T0 + timedelta(days=2), limit=5)
    assert len(empty) == 0 and empty.amount.shape == (0,) and not empty.truncated
