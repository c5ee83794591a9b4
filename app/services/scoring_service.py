"""The request path: online feature lookup within a time budget, assembly, prediction.

Single-transaction requests that arrive while the service is busy are scored together:
each goes into a queue, and one drain task takes everything queued (up to
``coalesce_max`` transactions), looks them up with one online-store call per view and
scores them as one matrix, then answers each request with its own prediction. Nothing
waits for company: a lone request is drained at once, alone. Under load the per-call costs
(the lookup's thread hop and query, NumPy's per-call overhead, the tracing spans) are
shared. A lone request's stage spans are children of its own span; a group of several
gets a ``coalesced_group`` span of its own (``scoring.coalesced`` says how many
transactions it held), linked to each request's span and linked back from them, and its
stage spans are the group span's children (:func:`app.core.telemetry.group_span_factory`).
Batch requests are scored on their own: the lookup as any other but within its own budget
(``batch_timeout_s``: a batch reads up to 1,000 customers and terminals), then assembly and
prediction on the batch lane (:mod:`app.services.batch_scoring`).

Every entry point (:meth:`~ScoringService.score`, :meth:`~ScoringService.score_offline`,
:meth:`~ScoringService.score_blocking`) looks features up through one method,
``_lookup``, which turns every failed lookup into the same degraded one: no store values,
``failure`` saying why (``unavailable``, ``busy``, ``timeout``, ``error``), velocity
states from the pending transactions alone. A partial read (the views read, the velocity
states not) fails as a whole.

The lookup runs on one dedicated thread (:mod:`app.services.lookup_thread`) so a slow or
locked online store can be abandoned after ``timeout_s``: the caller gets request-only
features, flagged ``feature_store:timeout``, and never waits longer than the budget. At
most ``max_pending`` lookups may queue behind a stuck one; beyond that the store is
skipped (``feature_store:busy``) instead of piling up work. A lookup still running after
``abandon_after_s`` has its thread abandoned and replaced.

With velocity features, the lookup also reads the customers' velocity states (a pending
snapshot first, then the store, merged: :func:`app.services.velocity.pending_snapshot`),
and once the transactions are scored they are recorded with the tracker, whose thread
pushes them to the online store off the request path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from opentelemetry import context as otel_context

from app.services.batch_scoring import BatchLane
from app.services.feature_rows import FeatureRows, RequestFields, assemble, entity_ids
from app.services.features import OnlineFeatures, ViewValues
from app.services.lookup_thread import LookupThread, LookupTimeout
from app.services.predictor import Prediction, Predictor
from app.services.shadow import ShadowScorer
from app.services.velocity import VelocityTracker, pending_snapshot
from feature_repo.velocity import VelocityState

log = logging.getLogger(__name__)

Span = Callable[[str], AbstractContextManager[Any]]
GroupSpan = Callable[[Sequence[otel_context.Context]], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Lookup:
    """What the online store gave (``views`` is None when the lookup failed, and
    ``failure`` says why) and, with velocity features, each customer's state."""

    views: dict[str, ViewValues] | None
    failure: str | None
    states: dict[str, VelocityState] | None = None


def _inline(lookup: Coroutine[Any, Any, Lookup]) -> Lookup:
    """The result of a lookup that never suspends (``_lookup`` without a budget reads on
    the calling thread), without an event loop."""
    try:
        lookup.send(None)
    except StopIteration as done:
        result: Lookup = done.value
        return result
    lookup.close()
    raise RuntimeError("a lookup without a budget waited")


@dataclass
class _Queued:
    transaction: RequestFields
    answer: asyncio.Future[Prediction]
    context: otel_context.Context


class ScoringService:
    """Feature lookup plus prediction, shared by the API, the dashboard and the batch command."""

    def __init__(
        self,
        features: OnlineFeatures | None,
        predictor: Predictor,
        timeout_s: float,
        span: Span,
        max_pending: int = 32,
        coalesce_max: int = 64,
        velocity: VelocityTracker | None = None,
        abandon_after_s: float = 1.0,
        max_abandoned: int = 4,
        on_abandon: Callable[[], object] | None = None,
        group_span: GroupSpan | None = None,
        batch_timeout_s: float | None = None,
    ) -> None:
        self.features = features
        self.velocity = velocity
        self.predictor = predictor
        self.timeout_s = timeout_s
        # a batch reads up to 1,000 customers and terminals: a budget of its own
        self.batch_timeout_s = batch_timeout_s if batch_timeout_s is not None else timeout_s
        self.span = span
        self.group_span = group_span
        self.max_pending = max_pending
        self.lookups = LookupThread(abandon_after_s, max_abandoned, on_abandon)  # /healthz
        self.coalesce_max = coalesce_max
        self._queue: list[_Queued] = []
        self._draining: asyncio.Task[None] | None = None
        self._batch = BatchLane()
        self.shadow: ShadowScorer | None = None  # the challenger, when one is loaded

    def _read(self, transactions: Sequence[RequestFields]) -> Lookup:
        assert self.features is not None
        ids = entity_ids(transactions)
        if not self.features.velocity:
            return Lookup(self.features.read(ids), None)
        customers = ids["customer_id"]
        snapshot = pending_snapshot(self.velocity, customers)  # before the store is read
        views, states = self.features.read_with_states(ids, customers)
        return Lookup(views, None, snapshot.merged(states))

    def _failed(self, transactions: Sequence[RequestFields], failure: str) -> Lookup:
        """No store values; velocity from the pending transactions alone."""
        if self.features is None or not self.features.velocity:
            return Lookup(None, failure)
        customers = [t.customer_id for t in transactions]
        return Lookup(None, failure, pending_snapshot(self.velocity, customers).merged(None))

    async def _lookup(
        self,
        transactions: Sequence[RequestFields],
        budget_s: float | None = None,
        skip_when_busy: bool = False,
    ) -> Lookup:
        """The one lookup path: the features of ``transactions``, or the degraded lookup
        saying why there are none. With ``budget_s``, on the lookup thread within that
        budget (``timeout``; ``busy`` first when ``skip_when_busy`` and ``max_pending``
        lookups are queued); without, on the calling thread (this coroutine then never
        suspends: :func:`_inline`). A read that raises is logged: ``error``."""
        if self.features is None:
            return Lookup(None, "unavailable")
        if budget_s is not None:
            self.lookups.recover()  # a stuck lookup thread is replaced first
            if skip_when_busy and self.lookups.pending >= self.max_pending:
                return self._failed(transactions, "busy")
        try:
            if budget_s is None:
                return self._read(transactions)
            return await self.lookups.run(budget_s, self._read, transactions)
        except LookupTimeout:
            return self._failed(transactions, "timeout")
        except Exception as exc:
            log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
            return self._failed(transactions, "error")

    def lookup_blocking(self, transactions: Sequence[RequestFields]) -> Lookup:
        """The same lookup on the calling thread, without a time budget (the batch command)."""
        return _inline(self._lookup(transactions))

    def rows(self, transactions: Sequence[RequestFields], found: Lookup) -> FeatureRows:
        views = self.features.views if self.features is not None else ()
        return assemble(transactions, views, found.views, found.failure, found.states)

    def predict(self, rows: FeatureRows) -> list[Prediction]:
        """Score, then record the scored transactions for the velocity state."""
        predictions = self._predict_rows(rows)
        self._decided(rows, predictions)
        return predictions

    def _decided(self, rows: FeatureRows, predictions: Sequence[Prediction]) -> None:
        """Decisions (not what-ifs) update the velocity state and go to the challenger."""
        if self.velocity is not None:
            self.velocity.record(rows.events)
        if self.shadow is not None:  # a queue append: the challenger scores elsewhere
            predictor = self.predictor
            self.shadow.submit(
                rows.ids,
                rows.matrix(predictor.feature_names),
                predictor.version,
                [p.model_decision or p.decision for p in predictions],
                [p.fraud_probability for p in predictions],
            )

    def pending(self) -> int:
        """Single transactions queued for scoring (the shadow scorer's load signal)."""
        return len(self._queue)

    def _predict_rows(self, rows: FeatureRows) -> list[Prediction]:
        return self.predictor.predict(rows, self.span)

    async def score(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """Look up, assemble and predict, with a tracing span per stage."""
        if len(transactions) > 1:
            return await self._score_batch(transactions)
        self._batch.single_arrived()
        if self.coalesce_max <= 1:
            return await self._score_now(transactions)
        answer: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(transactions[0], answer, otel_context.get_current()))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return [await answer]

    async def _score_now(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        with self.span("feature_lookup"):
            found = await self._lookup(transactions, self.timeout_s, skip_when_busy=True)
        return self.predict(self.rows(transactions, found))

    async def _score_batch(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """A batch in its turn on the batch lane: lookup, then the rest on the batch thread."""
        async with self._batch.turn():
            with self.span("feature_lookup"):
                found = await self._lookup(transactions, self.batch_timeout_s, skip_when_busy=True)
            return await self._batch.run(partial(self._predict_batch, transactions, found))

    def _predict_batch(
        self, transactions: Sequence[RequestFields], found: Lookup, record: bool = True
    ) -> list[Prediction]:
        """``predict`` for a batch on the batch thread, in chunks; a what-if (``record``
        False) leaves the velocity state alone."""
        rows = self.rows(transactions, found)
        predictions = self._batch.predict_in_chunks(rows, self._predict_rows)
        if record:
            self._decided(rows, predictions)
        return predictions

    async def _drain(self) -> None:
        """Score queued single transactions, group by group, until the queue is empty."""
        try:
            while self._queue:
                group = self._queue[: self.coalesce_max]
                del self._queue[: self.coalesce_max]
                token = otel_context.attach(group[0].context)
                try:
                    if len(group) == 1:
                        predictions = await self._score_now([group[0].transaction])
                    else:
                        contexts = [q.context for q in group]
                        with self.group_span(contexts) if self.group_span else nullcontext():
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

    async def score_offline(
        self, transactions: Sequence[RequestFields], timeout_s: float = 10.0
    ) -> list[Prediction]:
        """Score as a what-if: the same lookup (on the lookup thread, queued with the
        API's) and scorer, a generous time budget, and no velocity events recorded (the
        dashboard's form and file upload: these transactions are not being authorised).
        Assembly and prediction run on the batch thread, like a batch's."""
        found = await self._lookup(transactions, timeout_s)
        return await self._batch.run(partial(self._predict_batch, transactions, found, False))

    def score_blocking(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """Score on the calling thread with no time budget (the batch command)."""
        return self.predict(self.rows(transactions, self.lookup_blocking(transactions)))

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close(timeout_s=2.0)
        if self.velocity is not None:
            self.velocity.close()
        self.lookups.close()
        self._batch.close()
        if self.features is not None:
            self.features.close()
