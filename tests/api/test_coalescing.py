"""Coalesced scoring: single requests that queue together are scored as one group, each
gets its own answer, a lone request is not delayed, and a failure reaches every waiter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from app.core.config import Settings
from app.main import create_app
from app.schemas import TransactionIn
from tests.serving import as_request

pytestmark = pytest.mark.integration


def _transactions(recent: pd.DataFrame, n: int) -> list[TransactionIn]:
    return [TransactionIn.model_validate(as_request(row)) for row in recent.head(n).itertuples()]


async def _with_service(settings: Settings, work: Callable[[Any], Any]) -> Any:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return await work(app.state.runtime.service)


def test_concurrent_requests_are_grouped_and_answered_in_place(
    settings_for: Callable[..., Settings], recent: pd.DataFrame
) -> None:
    transactions = _transactions(recent, 40)
    groups: list[int] = []

    async def work(service: Any) -> tuple[list[Any], list[Any]]:
        one_by_one = [(await service.score([t]))[0] for t in transactions]
        predict = service.predictor.predict

        def counting(rows: Any, stage: Any) -> Any:
            groups.append(len(rows.degraded))
            return predict(rows, stage)

        service.predictor.predict = counting
        together = await asyncio.gather(*(service.score([t]) for t in transactions))
        return one_by_one, [answer for (answer,) in together]

    alone, grouped = asyncio.run(_with_service(settings_for(), work))
    assert sum(groups) == 40 and len(groups) < 40 and max(groups) > 1
    for a, b in zip(alone, grouped, strict=True):
        assert a.fraud_probability == pytest.approx(b.fraud_probability, abs=1e-12)
        assert a.reasons == b.reasons and a.degraded == b.degraded


def test_groups_are_capped_and_batches_are_scored_alone(
    settings_for: Callable[..., Settings], recent: pd.DataFrame
) -> None:
    transactions = _transactions(recent, 50)
    groups: list[int] = []

    async def work(service: Any) -> None:
        service.coalesce_max = 8
        predict = service.predictor.predict

        def counting(rows: Any, stage: Any) -> Any:
            groups.append(len(rows.degraded))
            return predict(rows, stage)

        service.predictor.predict = counting
        await asyncio.gather(
            service.score(transactions[:20]), *(service.score([t]) for t in transactions[20:])
        )

    asyncio.run(_with_service(settings_for(), work))
    assert 20 in groups  # the batch request, on its own
    singles = [g for g in groups if g != 20]
    assert sum(singles) == 30 and max(singles) <= 8


def test_a_failure_reaches_every_waiting_request(
    settings_for: Callable[..., Settings], recent: pd.DataFrame
) -> None:
    transactions = _transactions(recent, 6)

    async def work(service: Any) -> list[Any]:
        def broken(rows: Any, stage: Any) -> Any:
            raise RuntimeError("model exploded")

        service.predictor.predict = broken
        answers = await asyncio.gather(
            *(service.score([t]) for t in transactions), return_exceptions=True
        )
        service.predictor.predict = type(service.predictor).predict.__get__(service.predictor)
        after = await service.score([transactions[0]])  # the queue recovers
        return [*answers, after]

    *answers, after = asyncio.run(_with_service(settings_for(), work))
    assert all(isinstance(a, RuntimeError) for a in answers)
    assert after[0].decision_source == "model"


def test_a_batch_is_scored_off_the_event_loop_in_chunks(
    settings_for: Callable[..., Settings], recent: pd.DataFrame
) -> None:
    """Assembly and prediction of a batch run on the batch thread, a chunk at a time (the
    GIL is given up between chunks); singles stay on the event loop; answers are the same."""
    transactions = _transactions(recent, 120)
    calls: list[tuple[str, int]] = []

    async def work(service: Any) -> tuple[list[Any], list[Any]]:
        predict = service.predictor.predict

        def recording(rows: Any, stage: Any) -> Any:
            calls.append((threading.current_thread().name, len(rows.degraded)))
            return predict(rows, stage)

        service.predictor.predict = recording
        batch = await service.score(transactions)
        singles = [(await service.score([t]))[0] for t in transactions[:3]]
        return batch, singles

    batch, singles = asyncio.run(_with_service(settings_for(), work))
    assert [n for _, n in calls] == [50, 50, 20, 1, 1, 1]
    assert all(name.startswith("batch-scoring") for name, _ in calls[:3])
    assert all(name == threading.main_thread().name for name, _ in calls[3:])
    for a, b in zip(batch, singles, strict=False):
        assert a.fraud_probability == pytest.approx(b.fraud_probability, abs=1e-12)
        assert a.reasons == b.reasons
