"""Feedback labels: durable, idempotent per transaction, conflicts kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.services.label_log import LabelLog

pytestmark = pytest.mark.integration


def test_feedback_is_idempotent_and_conflicts_are_409(client: TestClient) -> None:
    first = client.post("/v1/feedback", json={"transaction_id": "tx-1", "is_fraud": True})
    assert (first.status_code, first.json()["status"]) == (200, "recorded")
    again = client.post("/v1/feedback", json={"transaction_id": "tx-1", "is_fraud": True})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    other = client.post(
        "/v1/feedback", json={"transaction_id": "tx-1", "is_fraud": False, "source": "analyst"}
    )
    assert (other.status_code, other.json()["status"]) == (409, "conflict")
    metrics = client.get("/metrics").text
    for status in ("recorded", "duplicate", "conflict"):
        assert f'fraud_feedback_total{{status="{status}"}} 1.0' in metrics


def test_feedback_validation(client: TestClient) -> None:
    for body in (
        {"transaction_id": "tx-2", "is_fraud": "yes"},
        {"transaction_id": "tx-2", "is_fraud": 1},
        {"transaction_id": "tx 2", "is_fraud": True},
        {"transaction_id": "tx-2", "is_fraud": True, "source": "rumour"},
        {"transaction_id": "tx-2"},
    ):
        assert client.post("/v1/feedback", json=body).status_code == 422


def test_the_label_log_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    log = LabelLog(path)
    assert [log.record(f"t{i}", i % 2 == 0, "chargeback") for i in range(3)] == ["recorded"] * 3
    assert log.record("t0", False, "analyst") == "conflict"
    log.close()
    reopened = LabelLog(path)
    assert reopened.counts() == {"labels": 3, "conflicts": 1}
    assert reopened.label("t0") is True  # the conflict did not overwrite the first label
    assert reopened.label("unknown") is None
    journal = reopened._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
