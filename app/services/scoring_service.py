"""The request path: online feature lookup within a time budget, assembly, prediction.

Single-transaction requests that arrive while the service is busy are scored together:
each goes into a queue, and one drain task takes everything queued (up to
``coalesce_max`` transactions), looks them up with one online-store call per view and
scores them as one matrix, then answers each request with its own prediction. Nothing
waits for company: a lone request is drained at once, alone. Under load the per-call costs
(the lookup's thread hop and query, NumPy's per-call overhead, the tracing spans) are
shared, which is where most of a single transaction's time goes. The stage spans of a
drained group are children of its first request's span (``scoring.coalesced`` says how
many transactions it held). Batch requests are scored on their own: the lookup as any
other, then assembly and prediction on a dedicated thread (one; the API's admission budget
bounds how many batches queue for it), so a batch of 1,000 never holds the event loop
(and every single request behind it) for the whole of its scoring.

The lookup runs on one dedicated thread so a slow or locked online store can be
abandoned after ``timeout_s``: the caller gets request-only features, flagged
``feature_store:timeout``, and never waits longer than the budget. At most
``max_pending`` lookups may queue behind a stuck one; beyond that the store is skipped
(``feature_store:busy``) instead of piling up work. A lookup still running after
``abandon_after_s`` is given up for good: its thread is abandoned (it ends whenever the
call returns), the lookups queued behind it fail at once, and a new thread takes the
next lookups. At most ``max_abandoned`` abandoned threads may be alive at once; beyond
that the service stops replacing and :meth:`ScoringService.oldest_lookup_seconds`
grows until the liveness probe restarts the process.

With velocity features, the lookup also reads the customers' velocity states (after
taking the tracker's pending snapshot: see :mod:`app.services.velocity`), and once the
transactions are scored they are recorded with the tracker, whose thread pushes them to
the online store off the request path.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
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
from app.services.velocity import VelocityTracker, merged_states
from app.services.worker import Abandoned, Worker
from feature_repo.velocity import VelocityState

log = logging.getLogger(__name__)

Span = Callable[[str], AbstractContextManager[Any]]
BATCH_CHUNK = 50  # rows predicted between two releases of the GIL (about 1 ms of work)
BATCH_YIELD = 2.0  # pause per chunk, in chunk times, while single requests come in
SINGLES_RECENT_S = 0.1  # "while single requests come in": one arrived this recently


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a lookup's failure as seen: its caller may have stopped waiting for it."""
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True)
class Lookup:
    """What the online store gave (``views`` is None when the lookup failed, and
    ``failure`` says why) and, with velocity features, each customer's state."""

    views: dict[str, ViewValues] | None
    failure: str | None
    states: dict[str, VelocityState] | None = None


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
        velocity: VelocityTracker | None = None,
        abandon_after_s: float = 1.0,
        max_abandoned: int = 4,
        on_abandon: Callable[[], object] | None = None,
    ) -> None:
        self.features = features
        self.velocity = velocity
        self.predictor = predictor
        self.timeout_s = timeout_s
        self.span = span
        self.max_pending = max_pending
        self.abandon_after_s = abandon_after_s
        self.max_abandoned = max_abandoned
        self._on_abandon = on_abandon
        self._worker = Worker("feature-lookup")
        self._abandoned: list[Worker] = []
        self.coalesce_max = coalesce_max
        self._queue: list[_Queued] = []
        self._draining: asyncio.Task[None] | None = None
        self._batches = ThreadPoolExecutor(1, thread_name_prefix="batch-scoring")
        self._last_single = 0.0  # perf_counter of the last single request's arrival
        self._batch_turn = asyncio.Lock()
        self._batch_free_at = 0.0

    @property
    def has_velocity(self) -> bool:
        return self.features is not None and self.features.velocity

    def _pending_states(self, customers: Sequence[str]) -> dict[str, VelocityState]:
        return self.velocity.pending_for(customers) if self.velocity is not None else {}

    def _read(self, transactions: Sequence[RequestFields]) -> Lookup:
        assert self.features is not None
        ids = entity_ids(transactions)
        customers = ids["customer_id"]
        if not self.features.velocity:
            return Lookup(self.features.read(ids), None)
        # Pending first, then the store: a transaction leaves pending only once stored,
        # so it is in one or the other (never lost between the two reads).
        pending = self._pending_states(customers)
        views = self.features.read(ids)
        stored = self.features.read_states(customers)
        return Lookup(views, None, merged_states(customers, stored, pending))

    def _failed(self, transactions: Sequence[RequestFields], failure: str) -> Lookup:
        """No store values; velocity from the pending transactions alone."""
        if not self.has_velocity:
            return Lookup(None, failure)
        customers = [t.customer_id for t in transactions]
        return Lookup(
            None, failure, merged_states(customers, None, self._pending_states(customers))
        )

    def recover(self) -> bool:
        """Replace the lookup thread when its current lookup has run longer than
        ``abandon_after_s`` (and fewer than ``max_abandoned`` abandoned threads are still
        stuck); True when it did. Called on the event loop before each lookup and by the
        liveness probe."""
        worker = self._worker
        if worker.running_seconds() < self.abandon_after_s:
            return False
        self._abandoned = [w for w in self._abandoned if w.alive]
        if len(self._abandoned) >= self.max_abandoned:
            return False
        log.error(
            "online feature lookup stuck: thread abandoned",
            extra={"fields": {"running_s": round(worker.running_seconds(), 3)}},
        )
        self._worker = Worker("feature-lookup")
        worker.abandon()
        self._abandoned.append(worker)
        if self._on_abandon is not None:
            self._on_abandon()
        return True

    def oldest_lookup_seconds(self) -> float:
        """Age of the oldest lookup the current thread has not finished (0 when idle)."""
        return self._worker.oldest_seconds()

    @property
    def abandoned_alive(self) -> int:
        """Abandoned lookup threads whose call has not returned yet."""
        return sum(1 for w in self._abandoned if w.alive)

    async def lookup(self, transactions: Sequence[RequestFields]) -> Lookup:
        """Batch features for ``transactions`` within the budget, or why there are none."""
        if self.features is None:
            return Lookup(None, "unavailable")
        self.recover()
        if self._worker.pending >= self.max_pending:
            return self._failed(transactions, "busy")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker, self._read, transactions)
        future.add_done_callback(_retrieved)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            # The budget is wall time: if the event loop was busy (a large batch) the
            # lookup may have finished meanwhile, and then its answer is still good.
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result()
            return self._failed(transactions, "timeout")
        except Abandoned:  # queued behind a stuck lookup whose thread was given up
            return self._failed(transactions, "timeout")
        except Exception as exc:
            log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
            return self._failed(transactions, "error")

    def lookup_blocking(self, transactions: Sequence[RequestFields]) -> Lookup:
        """The same lookup without a time budget (the batch command)."""
        if self.features is None:
            return Lookup(None, "unavailable")
        try:
            return self._read(transactions)
        except Exception as exc:
            log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
            return self._failed(transactions, "error")

    def rows(self, transactions: Sequence[RequestFields], found: Lookup) -> FeatureRows:
        views = self.features.views if self.features is not None else ()
        return assemble(transactions, views, found.views, found.failure, found.states)

    def predict(self, rows: FeatureRows) -> list[Prediction]:
        """Score, then record the scored transactions for the velocity state."""
        predictions = self.predictor.predict(rows, self.span)
        if self.velocity is not None:
            self.velocity.record(rows.events)
        return predictions

    async def score(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """Look up, assemble and predict, with a tracing span per stage."""
        if len(transactions) > 1:
            return await self._score_batch(transactions)
        self._last_single = time.perf_counter()
        if self.coalesce_max <= 1:
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

    async def _score_batch(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        """One batch at a time; while single requests come in, each starts only after a
        pause of ``BATCH_YIELD`` times the previous one's lookup and scoring, so back-to-
        back batches leave the singles most of the core."""
        async with self._batch_turn:
            while (
                self._singles_recent() and (pause := self._batch_free_at - time.perf_counter()) > 0
            ):
                await asyncio.sleep(pause)
            began = time.perf_counter()
            try:
                with self.span("feature_lookup"):
                    found = await self.lookup(transactions)
                # The copied context keeps the stage spans under the request's span.
                context = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._batches, context.run, self._predict_in_chunks, transactions, found
                )
            finally:
                ended = time.perf_counter()
                self._batch_free_at = ended + BATCH_YIELD * (ended - began)

    def _singles_recent(self) -> bool:
        return time.perf_counter() - self._last_single < SINGLES_RECENT_S

    def _predict_in_chunks(
        self, transactions: Sequence[RequestFields], found: Lookup, record: bool = True
    ) -> list[Prediction]:
        """``predict`` for a batch on the batch thread, ``BATCH_CHUNK`` rows at a time with
        the GIL given up in between: a thread that held it for a whole batch would let the
        event loop run only once per switch interval (5 ms) after each wait for I/O. While
        single transactions come in, it also pauses ``BATCH_YIELD`` times as long as each
        chunk took, so batches get at most a third of the core from them."""
        rows = self.rows(transactions, found)
        predictions: list[Prediction] = []
        for i in range(0, len(rows.degraded), BATCH_CHUNK):
            began = time.perf_counter()
            part = FeatureRows(
                {name: column[i : i + BATCH_CHUNK] for name, column in rows.columns.items()},
                rows.degraded[i : i + BATCH_CHUNK],
            )
            predictions += self.predictor.predict(part, self.span)
            # Read without a lock from this thread: a stale value only shifts one pause.
            time.sleep(BATCH_YIELD * (time.perf_counter() - began) if self._singles_recent() else 0)
        if record and self.velocity is not None:
            self.velocity.record(rows.events)
        return predictions

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

    async def score_offline(
        self, transactions: Sequence[RequestFields], timeout_s: float = 10.0
    ) -> list[Prediction]:
        """Score as a what-if: the same lookup (on the lookup thread, queued with the
        API's) and scorer, a generous time budget, and no velocity events recorded (the
        dashboard's form and file upload: these transactions are not being authorised)."""
        if self.features is None:
            found = Lookup(None, "unavailable")
        else:
            self.recover()
            future = asyncio.get_running_loop().run_in_executor(
                self._worker, self._read, transactions
            )
            try:
                found = await asyncio.wait_for(future, timeout_s)
            except (TimeoutError, Abandoned):
                found = self._failed(transactions, "timeout")
            except Exception as exc:
                log.warning("online feature lookup failed", extra={"fields": {"error": repr(exc)}})
                found = self._failed(transactions, "error")
        # Off the event loop, like a batch's, and recording nothing.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._batches, context.run, self._predict_in_chunks, transactions, found, False
        )

    def score_blocking(self, transactions: Sequence[RequestFields]) -> list[Prediction]:
        return self.predict(self.rows(transactions, self.lookup_blocking(transactions)))

    def close(self) -> None:
        if self.velocity is not None:
            self.velocity.close()
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._batches.shutdown(wait=False, cancel_futures=True)
        if self.features is not None:
            self.features.close()
