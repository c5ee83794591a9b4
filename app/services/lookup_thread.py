"""The thread the online-store lookups run on, waited for within a budget and replaced when stuck.

Lookups run on one dedicated :class:`~app.services.worker.Worker` so a slow or locked
online store can be abandoned: :meth:`LookupThread.run` waits at most ``budget_s`` (then
:class:`LookupTimeout`; the call goes on and its result is dropped). A call still running
after ``abandon_after_s`` is given up for good by :meth:`LookupThread.recover`: its thread
is abandoned (it ends whenever the call returns), the calls queued behind it fail at once
(:class:`LookupTimeout` too), and a new thread takes the next calls. At most
``max_abandoned`` abandoned threads may be alive at once; beyond that recovery stops and
:meth:`LookupThread.oldest_seconds` grows until the liveness probe restarts the process.

What a lookup reads, and what a failed one degrades to, is
:class:`~app.services.scoring_service.ScoringService`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from app.services.worker import Abandoned, Worker

# Its log lines are the scoring service's, under the logger name they have always had.
log = logging.getLogger("app.services.scoring_service")

T = TypeVar("T")


class LookupTimeout(Exception):
    """No answer within the budget, or queued behind a call whose thread was abandoned."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a call's failure as seen: its caller may have stopped waiting for it."""
    if not future.cancelled():
        future.exception()


class LookupThread:
    """One lookup thread at a time, replaced when its call is stuck (see the module)."""

    def __init__(
        self,
        abandon_after_s: float = 1.0,
        max_abandoned: int = 4,
        on_abandon: Callable[[], object] | None = None,
    ) -> None:
        self.abandon_after_s = abandon_after_s
        self.max_abandoned = max_abandoned
        self._on_abandon = on_abandon
        self._worker = Worker("feature-lookup")
        self._abandoned: list[Worker] = []

    @property
    def pending(self) -> int:
        """Calls submitted to the current thread and not finished."""
        return self._worker.pending

    async def run(self, budget_s: float, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on the lookup thread, waited for at most ``budget_s`` seconds;
        raises :class:`LookupTimeout`, or what ``call`` raised."""
        future = asyncio.get_running_loop().run_in_executor(self._worker, call, *args)
        future.add_done_callback(_retrieved)
        try:
            return await asyncio.wait_for(asyncio.shield(future), budget_s)
        except TimeoutError:
            # The budget is wall time: if the event loop was busy (a large batch) the
            # call may have finished meanwhile, and then its answer is still good.
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result()
            raise LookupTimeout from None
        except Abandoned:  # queued behind a stuck call whose thread was given up
            raise LookupTimeout from None

    def recover(self) -> bool:
        """Replace the thread when its current call has run longer than
        ``abandon_after_s`` (and fewer than ``max_abandoned`` abandoned threads are still
        stuck); True when it did. Called on the event loop before each lookup with a
        budget, and by the liveness probe (``/healthz``)."""
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

    def oldest_seconds(self) -> float:
        """Age of the oldest call the current thread has not finished (0 when idle)."""
        return self._worker.oldest_seconds()

    @property
    def abandoned_alive(self) -> int:
        """Abandoned threads whose call has not returned yet."""
        return sum(1 for w in self._abandoned if w.alive)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
