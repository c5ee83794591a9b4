"""The prediction audit log: every 2xx score is on record first; no record, no 2xx."""

from __future__ import annotations

import sqlite3
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
