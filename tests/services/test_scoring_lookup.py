"""The one lookup path of ScoringService (app/services/scoring_service.py): a failed and a
partial lookup give the same degraded answer through every entry point (``score`` alone
and as a batch, ``score_offline``, ``score_blocking``), with the same log line; the
entry points differ only in their budget, ``busy`` and what they record."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from app.schemas import TransactionIn
from app.services.features import ViewSpec, ViewValues
from app.services.predictor import Prediction, Predictor
from app.services.scoring_service import ScoringService
from feature_repo.velocity import EMPTY, VelocityEvent, VelocityState
from fraud_model.scorer import no_stage

T0 = 1_750_000_000.0
ENTRIES = ("score", "score_batch", "score_offline", "score_blocking")


class FakeFeatures:
    """Stands in for OnlineFeatures: one batch view and the velocity state; either read
    can fail or be slow, and every read is logged in ``calls``."""

    def __init__(
        self,
        fail_views: bool = False,
        fail_states: bool = False,
        delay_s: float = 0.0,
        calls: list[str] | None = None,
    ) -> None:
        self.views = (ViewSpec("customer_features", "customer_id", ("cust_amount_mean",), 0, None),)
        self.velocity = True
        self.fail_views, self.fail_states, self.delay_s = fail_views, fail_states, delay_s
        self.calls = calls if calls is not None else []

    def read(self, ids: Mapping[str, Sequence[str]]) -> dict[str, ViewValues]:
        self.calls.append("views")
        time.sleep(self.delay_s)
        if self.fail_views:
            raise sqlite3.OperationalError("database disk image is malformed")
        n = len(ids["customer_id"])
        return {"customer_features": ViewValues(np.full((n, 1), 80.0), np.full(n, T0 - 3600))}

    def read_states(self, customers: Sequence[str]) -> list[VelocityState]:
        self.calls.append("states")
        if self.fail_states:  # the views were read: a partial lookup
            raise sqlite3.OperationalError("no such table: customer_velocity")
        return [EMPTY for _ in customers]

    def read_with_states(
        self, ids: Mapping[str, Sequence[str]], customers: Sequence[str]
    ) -> tuple[dict[str, ViewValues], list[VelocityState]]:
        return self.read(ids), self.read_states(customers)  # as OnlineFeatures off Redis

    def close(self) -> None:
        pass


class PendingOnly:
    """Stands in for VelocityTracker: one pending transaction of C1 that is never pushed."""

    def __init__(self, calls: list[str] | None = None) -> None:
        event = VelocityEvent(T0 - 60, 25.0, "T9", 0.0, 0.0, "earlier")
        self.pending = {"C1": VelocityState((event,))}
        self.recorded: list[tuple[str, VelocityEvent]] = []
        self.calls = calls if calls is not None else []

    def pending_for(self, customers: Sequence[str]) -> dict[str, VelocityState]:
        self.calls.append("pending")
        return {c: self.pending[c] for c in customers if c in self.pending}

    def record(self, events: Sequence[tuple[str, VelocityEvent]]) -> None:
        self.recorded.extend(events)

    def close(self) -> None:
        pass


def transaction(i: int = 0) -> TransactionIn:
    return TransactionIn.model_validate(
        {
            "transaction_id": f"tx{i}",
            "customer_id": "C1",
            "terminal_id": "T1",
            "timestamp": "2025-06-15T15:06:40Z",  # T0
            "amount": 900.0 + i,
        }
    )


def service(features: Any, tracker: Any = None, **options: Any) -> ScoringService:
    return ScoringService(features, Predictor(None), 1.0, no_stage, velocity=tracker, **options)


def run(scoring: ScoringService, entry: str, n: int = 1) -> list[Prediction]:
    transactions = [transaction(i) for i in range(n if entry != "score_batch" else max(n, 2))]
    try:
        if entry == "score_blocking":
            return scoring.score_blocking(transactions)
        if entry == "score_offline":
            return asyncio.run(scoring.score_offline(transactions))
        return asyncio.run(scoring.score(transactions))
    finally:
        scoring.close()


def answer(p: Prediction) -> tuple[Any, ...]:
    return p.fraud_probability, p.decision, p.reasons, p.degraded


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_failed_and_a_partial_lookup_give_one_degraded_answer(
    entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    answers = {}
    for fault in ("failed", "partial"):
        caplog.clear()
        features = FakeFeatures(fail_views=fault == "failed", fail_states=fault == "partial")
        with caplog.at_level(logging.WARNING, "app.services.scoring_service"):
            (first, *_) = run(service(features, PendingOnly()), entry)
        answers[fault] = answer(first)
        failures = [r for r in caplog.records if r.getMessage() == "online feature lookup failed"]
        assert len(failures) == 1 and failures[0].name == "app.services.scoring_service"
        assert "OperationalError" in failures[0].fields["error"]  # type: ignore[attr-defined]
    assert answers["failed"] == answers["partial"]
    assert answers["failed"][3] == ["feature_store:error"]
    # the same answer as the blocking path's (request fields and pending velocity only)
    (reference,) = run(service(FakeFeatures(fail_views=True), PendingOnly()), "score_blocking")
    assert answers["failed"] == answer(reference)


def test_a_failed_lookup_still_has_the_pending_velocity_state() -> None:
    for features in (FakeFeatures(fail_views=True), FakeFeatures(fail_states=True)):
        scoring = service(features, PendingOnly())
        rows = scoring.rows([transaction()], scoring.lookup_blocking([transaction()]))
        scoring.close()
        assert rows.columns["vel_tx_count_1h"][0] == 1.0  # the pending transaction
        assert np.isnan(rows.columns["cust_amount_mean"][0])  # no view value is used


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_point_reads_pending_first_then_the_views_then_the_states(
    entry: str,
) -> None:
    calls: list[str] = []
    tracker = PendingOnly(calls)
    (p, *_) = run(service(FakeFeatures(calls=calls), tracker), entry)
    assert calls == ["pending", "views", "states"]
    assert p.degraded == []
    # a what-if records nothing; every other entry point records what it scored
    assert bool(tracker.recorded) == (entry != "score_offline")


@pytest.mark.parametrize("entry", ENTRIES)
def test_without_a_store_every_entry_point_answers_unavailable_silently(
    entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        (p, *_) = run(service(None), entry)
    assert p.degraded == ["feature_store:unavailable"]
    assert not caplog.records


@pytest.mark.parametrize(
    ("entry", "flag"),
    [("score", "timeout"), ("score_batch", "timeout"), ("score_offline", "timeout")],
)
def test_a_slow_store_times_out_within_each_budget(entry: str, flag: str) -> None:
    scoring = service(FakeFeatures(delay_s=0.3), PendingOnly())
    scoring.timeout_s = scoring.batch_timeout_s = 0.02
    started = time.perf_counter()
    if entry == "score_offline":
        try:
            (p,) = asyncio.run(scoring.score_offline([transaction()], timeout_s=0.02))
        finally:
            scoring.close()
    else:
        (p, *_) = run(scoring, entry)
    assert p.degraded == [f"feature_store:{flag}"]
    assert time.perf_counter() - started < 0.25


def test_a_batch_has_a_budget_of_its_own() -> None:
    """A lookup slower than a single's budget but within a batch's: the single is scored
    on request fields (timeout), the batch with its features."""
    scoring = service(FakeFeatures(delay_s=0.08), PendingOnly())
    scoring.timeout_s, scoring.batch_timeout_s = 0.02, 0.5
    (single,) = run(scoring, "score")
    scoring = service(FakeFeatures(delay_s=0.08), PendingOnly())
    scoring.timeout_s, scoring.batch_timeout_s = 0.02, 0.5
    batch = run(scoring, "score_batch")
    assert single.degraded == ["feature_store:timeout"]
    assert [p.degraded for p in batch] == [[] for _ in batch]


def test_the_blocking_path_has_no_budget() -> None:
    scoring = service(FakeFeatures(delay_s=0.05), PendingOnly())
    scoring.timeout_s = 0.001
    (p,) = run(scoring, "score_blocking")
    assert p.degraded == []


def test_only_the_api_skips_a_busy_store() -> None:
    """``busy`` (``max_pending`` lookups queued) is the API's: a what-if waits its turn."""
    (api,) = run(service(FakeFeatures(), max_pending=0), "score")
    (what_if,) = run(service(FakeFeatures(), max_pending=0), "score_offline")
    assert api.degraded == ["feature_store:busy"]
    assert what_if.degraded == []
