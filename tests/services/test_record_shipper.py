"""RecordShipper: spooled decisions and labels reach the system of record once, in order,
through outages and a full spool, with the metrics and state /readyz reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.services.label_log import LabelLog
from app.services.metrics import ServiceMetrics
from app.services.prediction_log import PredictionLog, PredictionRecord, SpoolFull
from app.services.record_shipper import RecordShipper
from benchmarks.postgres_server import PostgresServer
from system_of_record.store import RecordStore, open_store


def record(i: int) -> PredictionRecord:
    now = time.time()
    return PredictionRecord(
        f"tx-{i}", "v1", 0.25, "LOW", "approve", "model", "", f"r{i}", now,
        f"C{i % 7}", f"T{i % 5}", now - 60, 12.5 + i, None, "online", "ecom", True, 3.0,
        "fraud_detection_v2",
    )  # fmt: skip


def append(log: PredictionLog, start: int, count: int) -> None:
    asyncio.run(log.append([record(i) for i in range(start, start + count)]))


def shipper_for(
    tmp_path: Path, store: RecordStore, spool_max_rows: int = 1_000_000
) -> RecordShipper:
    audit = PredictionLog(tmp_path / "audit.sqlite", spool_max_rows=spool_max_rows)
    labels = LabelLog(tmp_path / "labels.sqlite")
    return RecordShipper(store, audit, labels, ServiceMetrics(), batch=100, interval_s=0.01)


def metric(shipper: RecordShipper, name: str, **labels: str) -> float:
    value = shipper.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_rows_are_shipped_in_batches_with_their_request_fields(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    shipper = shipper_for(tmp_path, store)
    append(shipper.audit, 0, 250)
    shipper.labels.record("tx-1", True, "chargeback")
    shipper.labels.record("tx-1", False, "customer")  # a conflict, after its first label
    assert shipper.audit.backlog == 250
    assert [shipper.ship_once() for _ in range(4)] == [102, 100, 50, 0]
    assert store.counts() == {"decisions": 250, "labels": 1, "label_conflicts": 1, "job_runs": 0}
    assert shipper.audit.backlog == 0 and shipper.labels.backlog() == 0
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT customer_id, terminal_id, amount, channel, is_foreign, feature_service "
            "FROM decisions WHERE transaction_id = 'tx-8'"
        )
        assert cursor.fetchone() == ("C1", "T3", 20.5, "online", 1, "fraud_detection_v2")
    assert metric(shipper, "fraud_record_shipped_rows_total", log="decisions") == 250
    assert metric(shipper, "fraud_record_label_outcomes_total", status="conflict") == 1
    assert metric(shipper, "fraud_record_spool_rows", log="decisions") == 0


def test_a_crash_before_the_mark_ships_again_without_duplicates(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    shipper = shipper_for(tmp_path, store)
    append(shipper.audit, 0, 30)
    shipper.ship_once()
    shipper.audit._pool.submit(  # as if the process died after the database's commit
        lambda: shipper.audit._connection().execute("DELETE FROM shipped")
    ).result()
    append(shipper.audit, 30, 5)
    assert shipper.ship_once() == 35
    assert store.counts()["decisions"] == 35


def test_shipped_rows_are_pruned_and_unshipped_ones_never(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    shipper = shipper_for(tmp_path, store)
    shipper.audit.retention_seconds = 0  # everything is past retention
    append(shipper.audit, 0, 10)
    shipper.ship_once()
    append(shipper.audit, 10, 10)  # these are not shipped yet
    shipper.audit._pruned = 0
    append(shipper.audit, 20, 1)  # a commit that prunes
    assert shipper.audit.count() == 11  # the 10 shipped ones are gone
    shipper.ship_once()
    assert store.counts()["decisions"] == 21


def test_an_outage_spools_then_drains_and_a_full_spool_refuses(
    tmp_path: Path, postgres_factory: Callable[[], PostgresServer]
) -> None:
    server = postgres_factory()
    shipper = shipper_for(tmp_path, open_store(server.url, server.password_file, 1), 300)
    shipper.start()
    append(shipper.audit, 0, 100)
    _wait(lambda: shipper.audit.backlog == 0)
    server.stop()
    append(shipper.audit, 100, 200)  # still acknowledged: spooled locally
    _wait(lambda: shipper.state.status == "unavailable")
    assert shipper.audit.backlog == 200
    assert metric(shipper, "fraud_record_up") == 0
    assert metric(shipper, "fraud_record_ship_errors_total") >= 1
    append(shipper.audit, 300, 100)  # reaches the bound
    assert shipper.audit.spool_full
    with pytest.raises(SpoolFull):
        append(shipper.audit, 400, 1)
    server.start()
    _wait(lambda: shipper.audit.backlog == 0, timeout=30)
    assert shipper.state.status == "shipping" and not shipper.audit.spool_full
    assert shipper.drain(5) == 0
    check = open_store(server.url, server.password_file)
    assert check.counts()["decisions"] == 400


def _wait(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_restarted_log_knows_what_an_earlier_process_left_unshipped(tmp_path: Path) -> None:
    first = PredictionLog(tmp_path / "audit.sqlite")
    append(first, 0, 12)
    first.close()
    again = PredictionLog(tmp_path / "audit.sqlite")
    assert again.backlog == 12  # /readyz must not say "nothing spooled" before a shipment
