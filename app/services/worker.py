"""A one-thread executor that can be abandoned: the online-store lookups run on one.

``ThreadPoolExecutor`` fits everything but a call that never returns: its threads are
joined when the interpreter exits, and its accounting cannot tell a stuck call from a
slow one. :class:`Worker` runs calls in order on one daemon thread and knows when the
current call started and when the oldest unfinished one was submitted, so the scoring
service can replace a worker whose call is stuck (:meth:`Worker.abandon`) and the
liveness probe can see how long scoring has been waiting.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_names = itertools.count(1)


class Abandoned(Exception):
    """The worker holding this call was abandoned before the call started."""


class Worker(Executor):
    """Runs submitted calls one at a time, in order, on its own daemon thread."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[int, Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._submitted: dict[int, float] = {}  # unfinished calls: id -> submit time (in order)
        self._futures: dict[int, Future[Any]] = {}
        self._ids = itertools.count()
        self._closed = False
        self._running: int | None = None
        self.busy_since: float | None = None  # monotonic start of the running call
        self._thread = threading.Thread(
            target=self._run, name=f"{name}-{next(_names)}", daemon=True
        )
        self._thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("worker is shut down")
            job = next(self._ids)
            self._submitted[job] = time.monotonic()
            self._futures[job] = future
        self._jobs.put((job, future, lambda: fn(*args, **kwargs)))
        return future

    @property
    def pending(self) -> int:
        """Calls submitted and not finished (the running one included)."""
        return len(self._submitted)

    def oldest_seconds(self, now: float | None = None) -> float:
        """How long the oldest unfinished call has waited or run (0 when idle)."""
        with self._lock:
            oldest = next(iter(self._submitted.values()), None)
        return 0.0 if oldest is None else (now or time.monotonic()) - oldest

    def running_seconds(self, now: float | None = None) -> float:
        """How long the running call has run (0 when none runs)."""
        since = self.busy_since
        return 0.0 if since is None else (now or time.monotonic()) - since

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, future, call = item
            with self._lock:  # abandon() may have failed it already
                claimed = job in self._futures
                if claimed:
                    self._running = job
                    self.busy_since = time.monotonic()
            if not claimed:
                continue
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = call()
                    except BaseException as exc:  # the caller's future carries it
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    self.busy_since = None
                    self._running = None
                    self._submitted.pop(job, None)
                    self._futures.pop(job, None)

    def abandon(self) -> None:
        """Stop taking calls; queued calls fail with :class:`Abandoned` at once, and the
        running call (if any) finishes on its own, its thread then exits."""
        with self._lock:
            self._closed = True
            queued = [(job, f) for job, f in self._futures.items() if job != self._running]
            for job, _ in queued:
                self._submitted.pop(job, None)
                self._futures.pop(job, None)
        for _, future in queued:
            if future.set_running_or_notify_cancel():
                future.set_exception(Abandoned())
        self._jobs.put(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
        if cancel_futures:
            self.abandon()
        else:
            self._jobs.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()
