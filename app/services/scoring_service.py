"""The request path: online feature lookup within a time budget, assembly, prediction.

Single-transaction requests that arrive while the service is busy are scored together:
each goes into a queue, and one drain task takes everything queued (up to
``coalesce_max`` transactions), looks them up with one online-store call per view and
scores them as one matrix, then answers each request with its own prediction. Nothing
waits for company: a lone request is drained at once, alone. Under load the per-call costs
(the lookup's thread hop and query, NumPy's per-call overhead, the tracing spans) are
shared, which is where most of a single transaction's time goes. The stage spans of a
drained group are children of its first request's span (``scoring.coalesced`` says how
many transactions it held). Batch requests are scored on their own, as before.

The lookup runs on one dedicated thread so a slow or locked online store can be
abandoned after ``timeout_s``: the caller gets request-only features, flagged
``feature_store:timeout``, and never waits longer than the budget. At most
``max_pending`` lookups may queue behind a stuck one; beyond that the store is skipped
(``feature_store:busy``) instead of piling up work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from app.services.feature_rows import FeatureRows, RequestFields, assemble, entity_ids
from app.services.features import OnlineFeatures, ViewValues
from app.services.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

Span = Callable[[str], AbstractContextManager[Any]]
Lookup = tuple[dict[str, ViewValues] | None, str | None]


@dataclass
class _Queued:
    transaction: RequestFields
    answer: asyncio.Future[Prediction]
    context: otel_context.Context


class ScoringService:
    """Feature lookup plus prediction, shared by the API and the batch command."""

    def __init__(
        self,
        features: OnlineFeatures | None,
        predictor: Predictor,
        timeout_s: float,
        span: Span,
        max_pending: int = 32,
        coalesce_max: int = 64,
    ) -> None:
        self.features = features
        self.predictor = predictor
        self.timeout_s = timeout_s
        self.span = span
        self.max_pending = max_pending
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feature-lookup")
        self.coalesce_max = coalesce_max
        self._queue: list[_Queued] = []
        self._draining: asyncio.Task[None] | None = None

    def _read(self, transactions: Sequence[RequestFields]) -> dict[str, ViewValues]:
        assert self.features is not None
        return self.features.read(entity_ids(transactions))

    def _done(self, _: object) -> None:
        self._pending -= 1

    async def lookup(self, transactions: Sequence[RequestFields]) -> Lookup:
        """Batch features for ``transactions`` within the budget, or why there are none."""
        if self.features is None:
            return None, "unavailable"
        if self._pending >= self.max_pending:
            return None, "busy"
        loop = asyncio.get_running_loop()
        self._pending += 1
        future = loop.run_in_executor(self._pool, self._read, transactions)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s), None
        except TimeoutError:
            # The budget is wall time: if the event loop was busy (a large batch) the
            # lookup may have finished meanwhile, and then its answer is still good.
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result(), None
            return None, "timeout"
        except Exception as exc:
            log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
            return None, "error"

    def lookup_blocking(self, transactions: Sequence[RequestFields]) -> Lookup:
        """The same lookup without a time budget (the batch command)."""
        if self.features is None:
            return None, "unavailable"
        try:
            return self._read(transactions), None
        except Exception as exc:
            log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
            return None, "error"

    def rows(self, transactions: Sequence[RequestFields], found: Lookup) -> FeatureRows:
        views = self.features.views if self.features is not None else ()
        return assemble(transactions, views, *found)

    def predict(self, rows: FeatureRows) -> list[Prediction]:
        return self.predictor.predict(rows, self.span)

    async def score(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """Look up, assemble and predict, with a tracing span per stage."""
        if len(transactions) != 1 or self.coalesce_max <= 1:
            return await self._score_now(transactions)
        answer: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(transactions[0], answer, otel_context.get_current()))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return [await answer]

    async def _score_now(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        with self.span("feature_lookup"):
            found = await self.lookup(transactions)
        return self.predict(self.rows(transactions, found))

    async def _drain(self) -> None:
        """Score queued single transactions, group by group, until the queue is empty."""
        try:
            while self._queue:
                group = self._queue[: self.coalesce_max]
                del self._queue[: self.coalesce_max]
                token = otel_context.attach(group[0].context)
                try:
                    trace.get_current_span().set_attribute("scoring.coalesced", len(group))
                    predictions = await self._score_now([q.transaction for q in group])
                except Exception as exc:  # every waiting request gets the failure
                    for q in group:
                        if not q.answer.done():
                            q.answer.set_exception(exc)
                    continue
                finally:
                    otel_context.detach(token)
                for q, prediction in zip(group, predictions, strict=True):
                    if not q.answer.done():
                        q.answer.set_result(prediction)
        finally:
            self._draining = None

    def score_blocking(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        return self.predict(self.rows(transactions, self.lookup_blocking(transactions)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.features is not None:
            self.features.close()
