"""The batch lane of the scoring service: batches are scored on their own thread, in chunks.

A batch request (and each chunk of the dashboard's what-if scores) is assembled and
predicted on the one ``batch-scoring`` thread (the API's admission budget bounds how many
batches queue for it), so a batch of 1,000 never holds the event loop, and every single
request behind it, for the whole of its scoring. :class:`BatchLane` owns that thread and
the pacing that keeps batches from crowding out single requests:

- the thread predicts ``BATCH_CHUNK`` rows at a time with the GIL given up in between (a
  thread that held it for a whole batch would let the event loop run only once per
  switch interval, 5 ms, after each wait for I/O);
- while single requests come in (one arrived within ``SINGLES_RECENT_S``), each chunk is
  followed by a pause of ``BATCH_YIELD`` times as long as it took, and a batch's turn
  (:meth:`BatchLane.turn`: one batch at a time) starts only after a pause of
  ``BATCH_YIELD`` times the previous turn, so batches get at most a third of the core.

What a batch is (lookup, assembly, prediction, velocity recording) stays with
:class:`~app.services.scoring_service.ScoringService`; this module only says where and
when it runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from app.services.feature_rows import FeatureRows
from app.services.predictor import Prediction

T = TypeVar("T")

BATCH_CHUNK = 50  # rows predicted between two releases of the GIL (about 1 ms of work)
BATCH_YIELD = 2.0  # pause per chunk, in chunk times, while single requests come in
SINGLES_RECENT_S = 0.1  # "while single requests come in": one arrived this recently


class BatchLane:
    """The batch-scoring thread, one batch's turn at a time, and the pacing of both."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="batch-scoring")
        self._last_single = 0.0  # perf_counter of the last single request's arrival
        self._turn = asyncio.Lock()
        self._free_at = 0.0

    def single_arrived(self) -> None:
        """Note a single request's arrival (on the event loop)."""
        self._last_single = time.perf_counter()

    def singles_recent(self) -> bool:
        return time.perf_counter() - self._last_single < SINGLES_RECENT_S

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One batch at a time; while single requests come in, each starts only after a
        pause of ``BATCH_YIELD`` times the previous one's turn (its lookup and scoring), so
        back-to-back batches leave the singles most of the core."""
        async with self._turn:
            while self.singles_recent() and (pause := self._free_at - time.perf_counter()) > 0:
                await asyncio.sleep(pause)
            began = time.perf_counter()
            try:
                yield
            finally:
                ended = time.perf_counter()
                self._free_at = ended + BATCH_YIELD * (ended - began)

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on the batch thread; the copied context keeps the stage spans it opens
        under the request's span."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._thread, context.run, work)

    def predict_in_chunks(
        self, rows: FeatureRows, predict: Callable[[FeatureRows], list[Prediction]]
    ) -> list[Prediction]:
        """``predict`` over ``rows``, ``BATCH_CHUNK`` rows at a time (on the batch thread),
        with the GIL given up in between; while single transactions come in, each chunk is
        followed by a pause of ``BATCH_YIELD`` times as long as it took."""
        predictions: list[Prediction] = []
        for i in range(0, len(rows.degraded), BATCH_CHUNK):
            began = time.perf_counter()
            predictions += predict(rows.part(i, i + BATCH_CHUNK))
            # Read without a lock from this thread: a stale value only shifts one pause.
            time.sleep(BATCH_YIELD * (time.perf_counter() - began) if self.singles_recent() else 0)
        return predictions

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
