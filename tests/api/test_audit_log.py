"""The prediction audit log: every 2xx score is on record first; no record, no 2xx."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.services.prediction_log import PredictionLog
from tests.serving import as_request

pytestmark = pytest.mark.integration

COLUMNS = (
    "transaction_id, model_version, fraud_probability, risk_level, decision, "
    "decision_source, degraded, request_id, scored_at"
)


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {COLUMNS} FROM predictions ORDER BY id").fetchall()


def test_single_and_batch_answers_are_recorded(
    client_for: Any, recent: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(audit_log=tmp_path / "audit.sqlite")
    began = time.time()
    single = client.post(
        "/v1/predict", json=as_request(recent.iloc[0]), headers={"X-Request-Id": "req-1"}
    )
    bodies = [as_request(row) for row in recent.iloc[1:4].itertuples()]
    batch = client.post("/v1/predict/batch", json={"transactions": bodies})
    assert single.status_code == batch.status_code == 200
    answers = [single.json(), *batch.json()["results"]]
    rows = _rows(tmp_path / "audit.sqlite")
    assert [r[:7] for r in rows] == [
        (
            a["transaction_id"],
            a["model_version"],
            a["fraud_probability"],
            a["risk_level"],
            a["decision"],
            a["decision_source"],
            ",".join(a["degraded"]),
        )
        for a in answers
    ]
    assert rows[0][7] == "req-1" and rows[1][7] == rows[3][7] == batch.headers["x-request-id"]
    assert all(began <= r[8] <= time.time() for r in rows)


def test_rejected_requests_leave_no_record(client: Any, tmp_path: Path) -> None:
    assert client.post("/v1/predict", json={"transaction_id": "x"}).status_code == 422
    assert client.app.state.runtime.audit.count() == 0


def test_without_a_durable_record_the_answer_is_503(
    client_for: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for()

    def full_disk(self: PredictionLog, rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    body = as_request(recent.iloc[0])
    with monkeypatch.context() as patch:
        patch.setattr(PredictionLog, "write", full_disk)
        for path, payload in (
            ("/v1/predict", body),
            ("/v1/predict/batch", {"transactions": [body]}),
        ):
            failed = client.post(path, json=payload)
            assert failed.status_code == 503
            assert failed.json() == {
                "detail": "the prediction could not be recorded durably; retry"
            }
            assert failed.headers["retry-after"] == "1"
    assert "fraud_audit_log_failures_total 2.0" in client.get("/metrics").text
    assert client.post("/v1/predict", json=body).status_code == 200  # the disk has room again
    assert client.app.state.runtime.audit.count() == 1


def test_a_broken_label_log_is_503_not_500(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = client.app.state.runtime.labels

    def locked(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(labels, "record", locked)
    answer = client.post("/v1/feedback", json={"transaction_id": "tx-9", "is_fraud": True})
    assert answer.status_code == 503
    assert answer.json() == {"detail": "the label could not be recorded durably; retry"}


# --- files that disappear while clients write ------------------------------------------


def _reopened(client: Any, file: str) -> float:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'fraud_file_reopened_total{{file="{file}"}}'):
            return float(line.split()[-1])
    return 0.0


def _write_while_deleting(
    client: Any, path: Path, make: Any, writes: int = 240
) -> tuple[list[tuple[float, str]], float]:
    """Four threads write ``writes`` requests; the file (with its -wal and -shm) is
    deleted once a third of them are answered. Returns the 2xx answers (sent at, id) and
    the time of the deletion."""
    acknowledged: list[tuple[float, str]] = []
    lock = threading.Lock()
    counter = iter(range(writes))
    deleted = threading.Event()
    deleted_at = [0.0]

    def writer() -> None:
        for i in counter:
            sent = time.monotonic()
            route, body, ident = make(i)
            if client.post(route, json=body).status_code < 300:
                with lock:
                    acknowledged.append((sent, ident))
                    if len(acknowledged) == writes // 3 and not deleted.is_set():
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{path}{suffix}").unlink(missing_ok=True)
                        deleted_at[0] = time.monotonic()
                        deleted.set()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert deleted.is_set()
    return acknowledged, deleted_at[0]


def test_deleting_the_audit_log_while_clients_score_loses_no_acknowledged_row(
    client_for: Any, recent: pd.DataFrame, tmp_path: Path
) -> None:
    """Was: every answer after the deletion acknowledged into the unlinked file (160 of
    160 missing at the path, and no file there at all)."""
    path = tmp_path / "audit.sqlite"
    client = client_for(audit_log=path)
    before = _reopened(client, "audit_log")
    rows = list(recent.itertuples())

    def make(i: int) -> tuple[str, dict[str, Any], str]:
        body = as_request(rows[i % len(rows)], transaction_id=f"del-{i}")
        return "/v1/predict", body, body["transaction_id"]

    acknowledged, deleted_at = _write_while_deleting(client, path, make)
    after = [ident for sent, ident in acknowledged if sent > deleted_at]
    assert len(after) >= 100
    on_record = {row[0] for row in _rows(path)} if path.exists() else set()
    assert [ident for ident in after if ident not in on_record] == []
    assert _reopened(client, "audit_log") == before + 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT reason FROM file_gaps").fetchall() == [("deleted",)]


def test_deleting_the_label_log_while_clients_send_feedback_loses_no_label(
    client_for: Any, tmp_path: Path
) -> None:
    path = tmp_path / "labels.sqlite"
    client = client_for(label_log=path)
    before = _reopened(client, "label_log")

    def make(i: int) -> tuple[str, dict[str, Any], str]:
        body = {"transaction_id": f"fb-{i}", "is_fraud": i % 2 == 0}
        return "/v1/feedback", body, body["transaction_id"]

    acknowledged, deleted_at = _write_while_deleting(client, path, make)
    after = [ident for sent, ident in acknowledged if sent > deleted_at]
    assert len(after) >= 100
    recorded: set[str] = set()
    if path.exists():
        with sqlite3.connect(path) as db:
            recorded = {row[0] for row in db.execute("SELECT transaction_id FROM labels")}
    assert [ident for ident in after if ident not in recorded] == []
    assert _reopened(client, "label_log") == before + 1
