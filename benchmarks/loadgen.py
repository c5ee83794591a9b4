"""A small HTTP/1.1 load generator on asyncio (uvloop): closed loop, open loop, one by one.

Python, so it runs with nothing but the project's own requirements, and light enough that
one core drives several thousand requests per second (``make bench`` measures and reports
its ceiling against ``/healthz``, so a result limited by the generator would show).

- ``closed_loop``: ``connections`` clients each send the next request as soon as the last
  answer arrives, for ``duration`` seconds: the throughput at saturation.
- ``open_loop``: requests are due at a fixed ``rate`` whatever the server does; each
  latency is measured from the moment the request was due, not from when a connection
  became free, so a server that falls behind shows the queueing (no coordinated omission).
  ``open_loop_windows`` is the same load without a pause, counted in consecutive windows
  (``make soak``).
- ``one_by_one``: a single connection, one request at a time: the unloaded latency.

Every request body comes from ``bodies`` in turn, so the server sees many customers and
terminals rather than one cached row. The requests are raw bytes, so one list may mix paths;
an iterator instead of a list is sent as it comes, never repeated (it must not run out).

The connections, the request encoding and the answer parser are those of
:mod:`benchmarks.http_client`, the one HTTP client of the tools. A request fails when the
connection breaks or cannot be opened, the answer cannot be read, no answer comes within
``TIMEOUT`` seconds, or the status is not 2xx. A keep-alive connection the server has
closed while it sat idle is dropped and replaced, not counted as an error.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from benchmarks.http_client import Connection, connect, encode

TIMEOUT = 30.0  # seconds; a request without an answer by then is an error

# A sequence is sent in turn, over and over; an iterator as it comes, once (requests that
# must not repeat, such as labels for new transaction ids).
Requests = Sequence[bytes] | Iterator[bytes]


def _stream(requests: Requests) -> Iterator[bytes]:
    return requests if isinstance(requests, Iterator) else itertools.cycle(requests)


@dataclass
class Run:
    """Latencies (seconds) of the answered requests, and what went wrong."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    late: int = 0  # open loop: requests sent more than 1 ms after they were due
    # open loop: latencies of the answered requests the generator sent on time (None:
    # not an open loop), so the tail without the generator's own lag can be reported
    on_time: list[float] | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def refused(self) -> int:
        """Answers with a status other than 2xx (the other errors broke the connection)."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds (NaN without answers)."""
        if not self.latencies:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies), q) * 1000.0)

    def summary(self) -> dict[str, float]:
        """Counts and latency percentiles (ms); in an open loop also ``p99_on_time_ms``,
        the p99 of the requests the generator sent no more than 1 ms after they were due."""
        out = {
            "requests": self.count,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(self.percentile(100), 3),
            "late": self.late,
        }
        if self.on_time is not None:
            on_time = np.asarray(self.on_time) * 1000.0
            p99 = float(np.percentile(on_time, 99)) if on_time.size else float("nan")
            out["p99_on_time_ms"] = round(p99, 3)
        return out


def encode_requests(
    host: str, port: int, path: str, bodies: Sequence[bytes], method: str = "POST"
) -> list[bytes]:
    """Complete HTTP/1.1 requests (keep-alive), one per body (JSON)."""
    return [encode(method, path, f"{host}:{port}", body) for body in bodies]


async def _send(conn: Connection, raw: bytes) -> int:
    """The status of the answer to ``raw``; ``ConnectionError`` when the connection breaks,
    the answer cannot be read, or none comes within ``TIMEOUT`` (the connection is closed)."""
    try:
        async with asyncio.timeout(TIMEOUT):
            response = await conn.exchange(raw)
    except TimeoutError as exc:
        conn.close()
        raise ConnectionError("no answer") from exc
    return response.status


def _record(run: Run, status: int, latency: float) -> None:
    run.statuses[status] = run.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        run.latencies.append(latency)
    else:
        run.errors += 1


async def closed_loop(
    host: str,
    port: int,
    requests: Requests,
    connections: int,
    duration: float,
    pause_after_refusal: float = 0.0,
) -> Run:
    """Saturation: ``connections`` clients back to back for ``duration`` seconds; a client
    whose request was refused (not 2xx) first waits ``pause_after_refusal`` seconds (a
    client that honours ``Retry-After``)."""
    pool = [await connect(host, port) for _ in range(connections)]
    cycle = _stream(requests)
    run = Run(seconds=duration)
    stop = time.perf_counter() + duration

    async def client(conn: Connection) -> None:
        while time.perf_counter() < stop and not conn.closed:
            began = time.perf_counter()
            try:
                status = await _send(conn, next(cycle))
            except ConnectionError:
                run.errors += 1
                return
            _record(run, status, time.perf_counter() - began)
            if pause_after_refusal and not 200 <= status < 300:
                await asyncio.sleep(min(pause_after_refusal, stop - time.perf_counter()))

    began = time.perf_counter()
    await asyncio.gather(*(client(c) for c in pool))
    run.seconds = time.perf_counter() - began
    for conn in pool:
        conn.close()
    return run


async def open_loop(
    host: str,
    port: int,
    requests: Requests,
    rate: float,
    duration: float,
    max_connections: int = 256,
) -> Run:
    """Requests due every ``1 / rate`` seconds for ``duration`` seconds, on as many
    connections as are needed (at most ``max_connections``; beyond that a request waits
    for a free one, and its wait counts in its latency)."""
    (run,) = await open_loop_windows(
        host, port, requests, rate, duration, duration, max_connections=max_connections
    )
    return run


async def open_loop_windows(
    host: str,
    port: int,
    requests: Requests,
    rate: float,
    duration: float,
    window: float,
    on_window: Callable[[int, Run], None] | None = None,
    max_connections: int = 256,
) -> list[Run]:
    """``open_loop`` without a pause for ``duration`` seconds, each request counted in the
    ``window``-second slice in which it was due (the last slice may be shorter).

    ``on_window(i, run)`` is called as slice ``i``'s last request is sent (some answers may
    still be on their way). Each run's ``seconds`` go from its slice's start to the last
    answer of a request due in it.
    """
    loop = asyncio.get_running_loop()
    idle: list[Connection] = []
    opened = 0
    freed = asyncio.Condition()
    total = int(rate * duration)
    slices = max(1, math.ceil(duration / window - 1e-9))
    runs = [Run(seconds=min(window, duration - i * window), on_time=[]) for i in range(slices)]
    ends = [0.0] * slices
    stream = _stream(requests)
    pending: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []

    async def one(due: float, raw: bytes, index: int, late: bool) -> None:
        nonlocal opened
        run = runs[index]
        async with freed:
            while True:
                while idle and idle[-1].closed:  # closed by the server while idle
                    idle.pop()
                    opened -= 1
                if idle or opened < max_connections:
                    break
                await freed.wait()
            if idle:
                conn: Connection | None = idle.pop()
            else:
                opened += 1
                conn = None
        try:
            if conn is None:
                conn = await asyncio.wait_for(connect(host, port), TIMEOUT)
            status = await _send(conn, raw)
        except OSError:  # refused, reset, closed or timed out
            run.errors += 1
            ends[index] = max(ends[index], time.perf_counter())
            async with freed:
                opened -= 1
                freed.notify()
            return
        now = time.perf_counter()
        _record(run, status, now - due)
        if not late and 200 <= status < 300 and run.on_time is not None:
            run.on_time.append(now - due)
        ends[index] = max(ends[index], now)
        async with freed:
            idle.append(conn)
            freed.notify()

    def finished(task: asyncio.Task[None]) -> None:
        pending.discard(task)  # done tasks are not kept: a soak sends hundreds of thousands
        error = None if task.cancelled() else task.exception()
        if error is not None:
            crashed.append(error)

    start = time.perf_counter() + 0.05
    current = 0
    for i in range(total):
        index = min(int(i / (rate * window)), slices - 1)
        while current < index:  # once per slice, even one without requests
            if on_window is not None:
                on_window(current, runs[current])
            current += 1
        due = start + i / rate
        delay = due - time.perf_counter()
        late = -delay > 0.001
        if delay > 0:
            await asyncio.sleep(delay)
        elif late:
            runs[index].late += 1
        task = loop.create_task(one(due, next(stream), index, late))
        pending.add(task)
        task.add_done_callback(finished)
    for index in range(current, slices):
        if on_window is not None:
            on_window(index, runs[index])
    while pending:
        await asyncio.gather(*pending)
    if crashed:
        raise crashed[0]
    for i, run in enumerate(runs):
        if ends[i]:
            run.seconds = ends[i] - (start + i * window)
    for conn in idle:
        conn.close()
    return runs


async def one_by_one(
    host: str, port: int, requests: Sequence[bytes], count: int, pause: float = 0.0
) -> Run:
    """Unloaded latency: one connection, ``count`` requests in sequence, ``pause`` seconds
    between an answer and the next request (0: back to back)."""
    conn = await connect(host, port)
    run = Run(seconds=0.0)
    began = time.perf_counter()
    for raw, _ in zip(itertools.cycle(requests), range(count), strict=False):
        sent = time.perf_counter()
        _record(run, await _send(conn, raw), time.perf_counter() - sent)
        if pause > 0:
            await asyncio.sleep(pause)
    run.seconds = time.perf_counter() - began
    conn.close()
    return run
