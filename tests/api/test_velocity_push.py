"""Velocity state through the real app: concurrent transactions of one customer are all
pushed, pushing never holds up an answer, and later answers see earlier transactions."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.services.velocity_store import VelocityStateStore

START = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def own_repo(feast_repo: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "feature_repo"
    shutil.copytree(feast_repo, repo)
    return repo


@pytest.fixture
def pushing(client_for: Callable[..., TestClient], own_repo: Path) -> TestClient:
    # The fixed admission limit alone (64 > the 12 concurrent clients): on a busy machine the
    # latency target would shed some of them, and shedding is tests/api/test_admission.py's.
    return client_for(
        feature_repo=own_repo,
        velocity_push=True,
        velocity_flush_ms=5,
        admission_single_target_ms=0,
    )


def body(i: int, customer: str = "CVELOCITY1", **changes: Any) -> dict[str, Any]:
    out = {
        "transaction_id": f"TXV{i:06d}",
        "customer_id": customer,
        "terminal_id": "T000001",
        "timestamp": (START + timedelta(seconds=i)).isoformat(),
        "amount": 10.0 + i,
    }
    out.update(changes)
    return out


def stored_ids(client: TestClient, customer: str) -> list[str]:
    runtime: Any = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.service.velocity.flush(10.0)
    states: VelocityStateStore = runtime.features.states
    (state,), _ = states.read([customer])
    return [e.transaction_id for e in state.events]


def test_concurrent_transactions_of_one_customer_are_all_pushed(pushing: TestClient) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda i: pushing.post("/v1/predict", json=body(i)), range(150)))
    assert [a.status_code for a in answers] == [200] * 150
    assert sorted(stored_ids(pushing, "CVELOCITY1")) == [f"TXV{i:06d}" for i in range(150)]
    metrics = pushing.get("/metrics").text
    assert "fraud_velocity_pending_transactions 0.0" in metrics
    assert "fraud_velocity_push_failures_total 0.0" in metrics


def test_a_retried_transaction_counts_once(pushing: TestClient) -> None:
    for _ in range(3):
        assert pushing.post("/v1/predict", json=body(1)).status_code == 200
    assert stored_ids(pushing, "CVELOCITY1") == ["TXV000001"]


def test_answers_do_not_wait_for_a_stuck_push(
    pushing: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime: Any = pushing.app.state.runtime  # type: ignore[attr-defined]
    release = threading.Event()
    writer = runtime.service.velocity._store
    real_write = writer.write

    def stuck(*args: Any) -> None:
        release.wait(30)
        real_write(*args)

    monkeypatch.setattr(writer, "write", stuck)
    answers = [pushing.post("/v1/predict", json=body(i, "CSTUCK")) for i in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert runtime.service.velocity.pending_events >= 19  # the first may be in the stuck push
    release.set()
    assert len(stored_ids(pushing, "CSTUCK")) == 20


def test_a_burst_is_visible_to_the_next_transaction(pushing: TestClient) -> None:
    """Read-your-writes: each answer's transaction is in the state the next one reads."""
    for i in range(6):
        assert pushing.post("/v1/predict", json=body(i * 30, "CBURST")).status_code == 200
    runtime: Any = pushing.app.state.runtime  # type: ignore[attr-defined]
    from app.schemas import TransactionIn

    nxt = TransactionIn.model_validate(body(200, "CBURST"))
    rows = runtime.service.rows([nxt], runtime.service.lookup_blocking([nxt]))
    assert rows.columns["vel_tx_count_10m"][0] == 6
    assert rows.columns["vel_seconds_since_prev"][0] == 200 - 150
    assert rows.columns["vel_amount_10m"][0] == sum(10.0 + i * 30 for i in range(6))


def test_a_future_dated_batch_does_not_wipe_the_cards_history(pushing: TestClient) -> None:
    """A batch dated almost a day ahead is scored, but the card's real last hour stays in
    its velocity state, and the batch counts from now on (it cannot hide in the future)."""
    now = datetime.now(UTC)
    history = [
        body(i, "CFUTURE", timestamp=(now - timedelta(minutes=5 * i)).isoformat())
        for i in range(1, 6)
    ]
    for tx in history:
        assert pushing.post("/v1/predict", json=tx).status_code == 200
    ahead = [
        body(
            100 + i,
            "CFUTURE",
            timestamp=(now + timedelta(hours=23, minutes=59, seconds=i)).isoformat(),
        )
        for i in range(3)
    ]
    answer = pushing.post("/v1/predict/batch", json={"transactions": ahead})
    assert answer.status_code == 200 and answer.json()["count"] == 3
    runtime: Any = pushing.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.service.velocity.flush(10.0)  # what follows reads the stored state
    from app.schemas import TransactionIn

    for stamp, want in ((now, 5), (datetime.now(UTC) + timedelta(seconds=1), 8)):
        nxt = TransactionIn.model_validate(body(200, "CFUTURE", timestamp=stamp.isoformat()))
        rows = runtime.service.rows([nxt], runtime.service.lookup_blocking([nxt]))
        assert (rows.columns["vel_tx_count_1h"][0], rows.columns["vel_tx_count_24h"][0]) == (
            want,
            want,
        )
    assert len(stored_ids(pushing, "CFUTURE")) == 8
    metrics = pushing.get("/metrics").text
    clamped = next(
        line for line in metrics.splitlines() if line.startswith("fraud_velocity_clamped")
    )
    assert float(clamped.split()[-1]) >= 3  # the three of this test (the client is shared)
