"""The request path: online feature lookup within a time budget, assembly, prediction.

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
from typing import Any

from app.services.feature_rows import FeatureRows, RequestFields, assemble, entity_ids
from app.services.features import OnlineFeatures, ViewValues
from app.services.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

Span = Callable[[str], AbstractContextManager[Any]]
Lookup = tuple[dict[str, ViewValues] | None, str | None]


class ScoringService:
    """Feature lookup plus prediction, shared by the API and the batch command."""

    def __init__(
        self,
        features: OnlineFeatures | None,
        predictor: Predictor,
        timeout_s: float,
        span: Span,
        max_pending: int = 32,
    ) -> None:
        self.features = features
        self.predictor = predictor
        self.timeout_s = timeout_s
        self.span = span
        self.max_pending = max_pending
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feature-lookup")

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
        with self.span("feature_lookup"):
            found = await self.lookup(transactions)
        return self.predict(self.rows(transactions, found))

    def score_blocking(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        return self.predict(self.rows(transactions, self.lookup_blocking(transactions)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
