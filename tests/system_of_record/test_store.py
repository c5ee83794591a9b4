"""The system of record on both engines: idempotent decisions, labels with conflicts, job
runs, the export the feature job reads, and outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.postgres_server import PostgresServer
from system_of_record.export import backfill, export_history, mature_labels
from system_of_record.rows import DecisionRow, LabelRow
from system_of_record.store import RecordStore, RecordTarget, RecordUnavailable, open_store

pytestmark = pytest.mark.integration
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    url, password = request.getfixturevalue("postgres_url")
    return open_store(url, password)


def decision(i: int, when: datetime = T0, probability: float = 0.1) -> DecisionRow:
    return DecisionRow(
        f"tx-{i}", f"C{i % 3}", f"T{i % 2}", when, 10.0 + i, None if i % 2 else "grocery",
        "online", "chip", bool(i % 2), 1.5, "fraud_detection_v2", "m1", probability, "LOW",
        "approve", "model", "", f"req-{i}", when + timedelta(milliseconds=5),
    )  # fmt: skip


def test_a_decision_shipped_twice_is_recorded_once_and_keeps_the_first(
    store: RecordStore,
) -> None:
    store.write_decisions([decision(1), decision(2)])
    store.write_decisions([decision(1, probability=0.9), decision(3)])  # a re-ship
    assert store.counts()["decisions"] == 3
    with store.transaction() as cursor:
        cursor.execute(
            store.sql("SELECT fraud_probability FROM decisions WHERE transaction_id = %s"),
            ("tx-1",),
        )
        assert cursor.fetchone()[0] == pytest.approx(0.1)


def test_labels_are_idempotent_and_a_different_label_is_a_conflict(store: RecordStore) -> None:
    first = LabelRow("tx-1", True, "chargeback", T0)
    other = LabelRow("tx-1", False, "customer", T0 + timedelta(hours=1))
    assert store.write_labels([first, first, other]) == ["recorded", "duplicate", "conflict"]
    assert store.write_labels([other]) == ["conflict"]  # the same conflict shipped again
    assert store.counts() | {"decisions": 0} == {
        "decisions": 0, "labels": 1, "label_conflicts": 1, "job_runs": 0,
    }  # fmt: skip
    with store.transaction() as cursor:
        cursor.execute("SELECT is_fraud FROM labels")
        assert bool(cursor.fetchone()[0]) is True  # the first label stands


def test_last_success_per_job_ignores_failures(store: RecordStore) -> None:
    store.record_job_run("features", "succeeded", T0, T0 + timedelta(minutes=5), {"rows": 3})
    store.record_job_run("features", "failed", T0, T0 + timedelta(days=1), {})
    store.record_job_run("retrain", "succeeded", T0, T0 + timedelta(hours=2), {})
    assert store.last_successes() == {
        "features": (T0 + timedelta(minutes=5)).timestamp(),
        "retrain": (T0 + timedelta(hours=2)).timestamp(),
    }


def test_export_partitions_by_day_with_labels_that_have_arrived(
    store: RecordStore, tmp_path: Path
) -> None:
    rows = [decision(i, T0 + timedelta(hours=10 * i)) for i in range(6)]  # 3 days
    store.write_decisions(rows)
    store.write_labels([LabelRow("tx-0", True, "chargeback", T0 + timedelta(days=7))])
    written = export_history(store, tmp_path / "export", days=2)
    assert written == {"2025-03-02": 2, "2025-03-03": 2}  # the newest two days
    export_history(store, tmp_path / "export", days=3)
    frame = pd.read_parquet(tmp_path / "export" / "transactions").sort_values("timestamp")
    assert list(frame["transaction_id"]) == [f"tx-{i}" for i in range(6)]
    assert frame["is_fraud"].isna().sum() == 5  # only tx-0's label has arrived
    assert frame.loc[frame.transaction_id == "tx-0", "is_fraud"].item() == 1
    assert frame["timestamp"].dt.tz is not None
    assert frame["amount"].tolist() == [10.0 + i for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "export" / "transactions").iterdir()) == [
        "date=2025-03-01", "date=2025-03-02", "date=2025-03-03",
    ]  # fmt: skip
    # A label arriving later reaches the next export of that day.
    store.write_labels([LabelRow("tx-5", False, "review", T0 + timedelta(days=8))])
    export_history(store, tmp_path / "export", days=1)
    again = pd.read_parquet(tmp_path / "export" / "transactions")
    assert again.loc[again.transaction_id == "tx-5", "is_fraud"].item() == 0
    assert len(again) == 6


def test_backfill_loads_history_as_unscored_decisions_with_delayed_labels(
    store: RecordStore, tmp_path: Path
) -> None:
    history = pd.DataFrame(
        {
            "transaction_id": ["h1", "h2"], "customer_id": ["C1", "C2"],
            "terminal_id": ["T1", "T2"],
            "timestamp": pd.to_datetime(["2025-03-01 10:00", "2025-03-02 11:00"], utc=True),
            "amount": [5.0, 7.0], "merchant_category": ["grocery", None],
            "channel": ["online", "card_present"], "entry_mode": ["chip", "ecom"],
            "is_foreign": [False, True], "distance_from_home_km": [1.0, 2.0],
            "is_fraud": [0, 1],
        }
    )  # fmt: skip
    assert backfill(store, history, timedelta(days=7)) == (2, 2)
    backfill(store, history, timedelta(days=7))  # idempotent
    assert store.counts()["decisions"] == 2 and store.counts()["labels"] == 2
    export_history(store, tmp_path / "x", days=5)
    frame = pd.read_parquet(tmp_path / "x" / "transactions").sort_values("timestamp")
    assert frame["is_fraud"].tolist() == [0, 1]
    assert (frame["label_received_at"] - frame["timestamp"]).tolist() == [pd.Timedelta(days=7)] * 2
    assert frame["merchant_category"].tolist() == ["grocery", None]


def test_an_outage_raises_and_the_store_reconnects_after_it(
    postgres_factory: object, tmp_path: Path
) -> None:
    server: PostgresServer = postgres_factory()  # type: ignore[operator]
    store = open_store(server.url, server.password_file, timeout_s=1)
    store.write_decisions([decision(1)])
    server.stop()
    with pytest.raises(RecordUnavailable):
        store.write_decisions([decision(2)])
    server.start()
    store.write_decisions([decision(2)])
    assert store.counts()["decisions"] == 2


def test_urls_are_parsed_and_secrets_stay_out_of_them(tmp_path: Path) -> None:
    assert RecordTarget.parse("sqlite:///var/record.sqlite").location == "var/record.sqlite"
    assert RecordTarget.parse("sqlite:////tmp/r.sqlite").location == "/tmp/r.sqlite"
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    target = RecordTarget.parse("postgresql://app@10.0.0.3:5432/fraud", secret)
    assert target.password == "s3cret"
    assert "s3cret" not in target.describe()
    for bad in ("postgresql://app:pw@h/db", "mysql://h/db", "sqlite://"):
        with pytest.raises(ValueError):
            RecordTarget.parse(bad)


def test_labels_mature_after_the_delay_and_unknown_recent_ones_are_left_out() -> None:
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    export = pd.DataFrame(
        {
            "transaction_id": ["old-fraud", "old-quiet", "new-fraud", "new-quiet", "late"],
            "timestamp": [t0, t0, t0 + 8 * day, t0 + 8 * day, t0],
            "is_fraud": pd.array([1, None, 1, None, 1], dtype="Int8"),
            "label_received_at": [t0 + 7 * day, pd.NaT, t0 + 9 * day, pd.NaT, t0 + 20 * day],
        }
    )
    rows = mature_labels(export, t0 + 10 * day, 7 * day)
    assert dict(zip(rows["transaction_id"], rows["is_fraud"], strict=True)) == {
        "old-fraud": 1, "old-quiet": 0, "new-fraud": 1, "late": 1,
    }  # fmt: skip


def test_the_literal_statements_name_the_rows_fields_in_order() -> None:
    from system_of_record.rows import DECISION_COLUMNS, LABEL_COLUMNS
    from system_of_record.store import INSERT_CONFLICT, INSERT_DECISION, INSERT_LABEL

    def columns(statement: str) -> tuple[str, ...]:
        inside = statement.split("(", 1)[1].split(")", 1)[0]
        return tuple(name.strip() for name in inside.split(","))

    assert columns(INSERT_DECISION) == DECISION_COLUMNS
    assert columns(INSERT_LABEL) == columns(INSERT_CONFLICT) == LABEL_COLUMNS
    assert INSERT_DECISION.count("%s") == len(DECISION_COLUMNS)
