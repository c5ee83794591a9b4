"""The review queue through the real app: decisions of ``review`` queued when shipped,
one analyst per entry (claims race on the record), outcomes become analyst labels."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.api.test_rules_api import wait_for, write_atomically
from tests.serving import as_request

pytestmark = pytest.mark.integration

# A block rule forcing ``review`` on one amount: which transactions are queued is ours.
RULES = """\
version: "review.1"
lists: {}
rules:
  - id: review_odd_amount
    stage: block
    when: {field: request.amount, op: "==", value: 777.77}
    action: {decision: review, reason: ODD_AMOUNT, risk_level: MEDIUM}
"""
A = {"X-API-Key": "a-key"}
B = {"X-API-Key": "b-key"}


def _metric(text: str, line: str) -> float | None:
    values = [float(row.split()[-1]) for row in text.splitlines() if row.startswith(line + " ")]
    return values[0] if values else None


def test_review_queue_claims_and_outcomes(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(
        rules_file=write_atomically(tmp_path / "rules.yaml", RULES),
        record_ship_interval_ms=20,
        record_jobs_refresh_seconds=0.05,  # the queue gauges follow quickly
        api_keys="a-key,b-key",
    )
    bodies = [{**as_request(recent.iloc[i]), "amount": 777.77} for i in range(7)]
    other = as_request(recent.iloc[10])
    for body in [*bodies, other]:
        answer = client.post("/v1/predict", json=body, headers=A).json()
        expected = "review" if body is not other else answer["decision"]
        assert answer["decision"] == expected
    assert other["amount"] != 777.77
    ids = [b["transaction_id"] for b in bodies]

    def queued() -> list[dict[str, Any]] | None:
        response = client.get("/v1/review/queue?limit=100", headers=B)
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        return items if len(items) >= len(ids) else None

    items = wait_for(queued)
    assert items and sorted(i["transaction_id"] for i in items) == sorted(ids)
    first = items[0]
    assert (first["why"], first["status"], first["decision"]) == ("review", "open", "review")
    assert (first["rules"], first["decision_source"]) == (["review_odd_amount"], "rule")
    assert "ODD_AMOUNT" in first["reasons"]
    assert first["amount"] == pytest.approx(777.77)

    fraud_tx, unsure_tx, *raced = ids
    assert client.post(f"/v1/review/{fraud_tx}/claim", headers=A).status_code == 200
    assert client.post(f"/v1/review/{fraud_tx}/claim", headers=B).status_code == 409
    stolen = client.post(
        f"/v1/review/{fraud_tx}/outcome", json={"outcome": "legitimate"}, headers=B
    )
    assert stolen.status_code == 409
    assert client.get(f"/v1/review/{fraud_tx}", headers=B).json()["status"] == "claimed"
    done = client.post(
        f"/v1/review/{fraud_tx}/outcome", json={"outcome": "fraud", "note": "card test"}, headers=A
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["label"]) == ("resolved", "recorded")
    again = client.post(f"/v1/review/{fraud_tx}/outcome", json={"outcome": "fraud"}, headers=A)
    assert again.status_code == 409
    resolved = client.get(f"/v1/review/{fraud_tx}", headers=B).json()
    assert (resolved["status"], resolved["outcome"], resolved["note"]) == (
        "resolved",
        "fraud",
        "card test",
    )
    assert client.post(f"/v1/review/{fraud_tx}/claim", headers=B).status_code == 409
    assert client.post("/v1/review/TX-NOT-QUEUED/claim", headers=A).status_code == 404

    assert client.post(f"/v1/review/{unsure_tx}/claim", headers=B).status_code == 200
    unsure = client.post(f"/v1/review/{unsure_tx}/outcome", json={"outcome": "unsure"}, headers=B)
    assert (unsure.status_code, unsure.json()["label"]) == (200, None)

    with sqlite3.connect(tmp_path / "labels.sqlite") as log:
        labels = log.execute("SELECT transaction_id, is_fraud, source FROM labels").fetchall()
    assert labels == [(fraud_tx, 1, "analyst")]

    def in_record() -> list[Any]:
        with sqlite3.connect(tmp_path / "record.sqlite") as record:
            return record.execute("SELECT transaction_id, source FROM labels").fetchall()

    assert wait_for(in_record) == [(fraud_tx, "analyst")]

    for tx in raced:  # two analysts press "claim" at the same moment
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def press(
            headers: dict[str, str],
            tx: str = tx,
            barrier: threading.Barrier = barrier,
            codes: list[int] = codes,
        ) -> None:
            barrier.wait(timeout=10)
            codes.append(client.post(f"/v1/review/{tx}/claim", headers=headers).status_code)

        threads = [threading.Thread(target=press, args=(h,)) for h in (A, B)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(codes) == [200, 409], tx

    metrics = client.get("/metrics").text
    assert _metric(metrics, 'fraud_review_outcomes_total{outcome="fraud"}') == 1.0
    assert _metric(metrics, 'fraud_review_outcomes_total{outcome="unsure"}') == 1.0
    assert _metric(metrics, 'fraud_review_outcomes_total{outcome="legitimate"}') in (None, 0.0)

    def gauges() -> bool:
        text = client.get("/metrics").text
        return (
            _metric(text, 'fraud_review_queue_items{status="resolved"}') == 2.0
            and _metric(text, 'fraud_review_queue_items{status="claimed"}') == len(raced)
            and _metric(text, 'fraud_review_queue_items{status="open"}') == 0.0
        )

    assert wait_for(gauges)
    counts = client.get("/v1/review/queue?status=all", headers=A).json()["counts"]
    assert (counts["open"], counts["claimed"], counts["resolved"]) == (0, len(raced), 2)
