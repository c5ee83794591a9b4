"""The open-loop replay: transaction ``i`` is due at ``start + i / rate`` whatever the
service does, and its latency runs from that due time to its answer, so a service that
falls behind shows its queue (no coordinated omission). Labels are posted as the
simulated clock (the timestamp of the transaction being sent) reaches their due time.

The run is bounded: nothing is sent after ``max_seconds``, and answers still outstanding
then get at most ``timeout + 1`` seconds more before they are abandoned (``cancelled``).
Ctrl-C stops the sending the same way, and the summary still gets written.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from benchmarks.http_client import Client, RequestError
from benchmarks.replay.stream import Label, LabelSchedule, Transaction

LATE_SECONDS = 0.010  # a send this long after its due time is the client's own lateness
PROGRESS_SECONDS = 5.0
START_DELAY = 0.05  # the first transaction is due this long after the run starts


@dataclass(frozen=True, slots=True)
class Answer:
    """What the summary keeps of a 2xx ``ScoreOut``."""

    decision: str
    degraded: tuple[str, ...]
    decision_source: str
    model_version: str
    service_ms: float  # the service's own latency_ms
    latency_s: float  # from the due time to the end of the answer


# Per transaction: its answer, or how it failed ("503", "timeout", "cancelled", ...).
Outcome = Answer | str


def parse_answer(body: bytes, latency_s: float) -> Answer:
    """The fields of a ``/v1/predict`` answer; ``ValueError`` if any is missing or wrong."""
    try:
        data = orjson.loads(body)
        degraded = data["degraded"]
        if not isinstance(degraded, list):
            raise TypeError("degraded is not a list")
        return Answer(
            decision=str(data["decision"]),
            degraded=tuple(str(flag) for flag in degraded),
            decision_source=str(data["decision_source"]),
            model_version=str(data["model_version"]),
            service_ms=float(data["latency_ms"]),
            latency_s=latency_s,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a ScoreOut answer: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Pacing:
    rate: float  # transactions due per second
    max_seconds: float  # nothing is sent after this
    label_delay_seconds: float  # simulated seconds from a transaction to its label


@dataclass
class FeedbackTally:
    """Labels posted (``posted == ok + sum(errors)``) and those left at the end."""

    posted: int = 0
    ok: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # FeedbackOut.status of 2xx
    errors: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    due_not_posted: int = 0  # due by the final clock, not posted (the run hit its time limit)
    pending: int = 0  # not yet due by the final simulated clock


@dataclass
class Run:
    """Everything measured during one replay."""

    outcomes: list[Outcome | None]  # per transaction; None: not sent
    sent: int
    late: int
    same_customer_in_flight: int  # sent while an earlier one of the customer was unanswered
    waited_for_connection: int  # found all max_in_flight connections busy
    replaced_idle: int
    stopped_by_time_limit: bool
    interrupted: bool  # Ctrl-C stopped the sending
    send_seconds: float  # first due time to the last send
    answer_seconds: float  # first due time to the last answer
    sim_clock: float | None  # the final simulated clock (epoch seconds)
    feedback: FeedbackTally
    examples: dict[str, str] = field(default_factory=dict)  # kind -> its first failure


async def _wait(tasks: set[asyncio.Task[None]], until: float) -> None:
    if tasks:
        await asyncio.wait(set(tasks), timeout=max(0.0, until - time.perf_counter()))


async def _cancel(tasks: set[asyncio.Task[None]]) -> int:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)


async def replay(
    transactions: Sequence[Transaction],
    client: Client,
    pacing: Pacing,
    progress: TextIO | None = None,
) -> Run:
    """Send every transaction at its due time (until ``max_seconds``), post labels as
    they fall due, wait for the answers, and return what happened."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    outcomes: list[Outcome | None] = [None] * len(transactions)
    labels = LabelSchedule(pacing.label_delay_seconds)
    feedback = FeedbackTally()
    in_flight: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    predicts: set[asyncio.Task[None]] = set()
    posts: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []
    examples: dict[str, str] = {}
    last_answer = 0.0

    async def predict(i: int, tx: Transaction, due: float) -> None:
        nonlocal last_answer
        try:
            response = await client.request("POST", "/v1/predict", tx.body)
        except RequestError as exc:
            outcomes[i] = exc.kind
            examples.setdefault(exc.kind, str(exc))
        else:
            now = clock()
            if 200 <= response.status < 300:
                try:
                    answer = parse_answer(response.body, now - due)
                except ValueError as exc:
                    outcomes[i] = "bad_answer"
                    examples.setdefault("bad_answer", str(exc)[:300])
                else:
                    outcomes[i] = answer
                    labels.on_answered(tx, answer.decision)
            else:
                kind = outcomes[i] = str(response.status)
                examples.setdefault(kind, response.body[:300].decode(errors="replace"))
        finally:
            in_flight[tx.customer_id] -= 1
            if in_flight[tx.customer_id] <= 0:
                del in_flight[tx.customer_id]
        last_answer = clock()
        counts["answered" if isinstance(outcomes[i], Answer) else "failed"] += 1

    async def post(label: Label) -> None:
        try:
            response = await client.request("POST", "/v1/feedback", label.body())
        except RequestError as exc:
            feedback.errors[exc.kind] += 1
            return
        if 200 <= response.status < 300:
            feedback.ok += 1
            try:
                feedback.outcomes[str(orjson.loads(response.body)["status"])] += 1
            except (orjson.JSONDecodeError, KeyError, TypeError):
                feedback.outcomes["unreadable"] += 1
        else:
            feedback.errors[str(response.status)] += 1

    def spawn(coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]]) -> None:
        task = loop.create_task(coro)
        group.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            group.discard(done)  # a long run must not keep every finished task
            error = None if done.cancelled() else done.exception()
            if error is not None:
                crashed.append(error)

        task.add_done_callback(finished)

    def post_due(sim_clock: float) -> None:
        for label in labels.pop_due(sim_clock):
            feedback.posted += 1
            feedback.by_source[label.source] += 1
            spawn(post(label), posts)

    async def report() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            day = "-" if sim_clock is None else datetime.fromtimestamp(sim_clock, UTC).date()
            progress.write(
                f"replay: {sent:,}/{len(transactions):,} sent, {counts['answered']:,} answered, "
                f"{counts['failed']:,} failed, {late:,} late, {feedback.posted:,} labels, "
                f"simulated {day}\n"
            )
            progress.flush()

    start = clock() + START_DELAY
    deadline = start + pacing.max_seconds
    sent = late = overlap = 0
    stopped = False
    last_send = start
    sim_clock: float | None = None
    reporter = loop.create_task(report()) if progress is not None else None
    interrupted = False
    try:
        for i, tx in enumerate(transactions):
            due = start + i / pacing.rate
            if due > deadline:
                stopped = True
                break
            wait = due - clock()
            await asyncio.sleep(wait if wait > 0 else 0)  # always yield: answers get read
            now = clock()
            if now > deadline:
                stopped = True
                break
            if now - due > LATE_SECONDS:
                late += 1
            if in_flight[tx.customer_id]:
                overlap += 1
            in_flight[tx.customer_id] += 1
            spawn(predict(i, tx, due), predicts)
            labels.on_sent(tx)
            sent += 1
            last_send = now
            sim_clock = tx.seconds
            post_due(sim_clock)
            if crashed:
                break
    except asyncio.CancelledError:  # Ctrl-C: stop sending, keep what was measured
        interrupted = True
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()

    until = max(clock() if interrupted else deadline, clock()) + client.timeout + 1.0
    await _wait(predicts, until)
    complete = not (stopped or interrupted or crashed)
    if complete and sim_clock is not None and all(t.done() for t in predicts):
        post_due(sim_clock)  # alerts answered after the last send, due by the final clock
    await _wait(posts, until)
    abandoned = await _cancel(predicts) + await _cancel(posts)
    if reporter is not None:
        await _cancel({reporter})
    if crashed:
        raise crashed[0]
    for i in range(sent):
        if outcomes[i] is None:
            outcomes[i] = "cancelled"
            examples.setdefault("cancelled", "still unanswered when the run ended")
    unanswered = feedback.posted - feedback.ok - sum(feedback.errors.values())
    if unanswered:
        feedback.errors["cancelled"] += unanswered
    if sim_clock is not None:
        feedback.due_not_posted, feedback.pending = labels.count(sim_clock)
    return Run(
        outcomes=outcomes,
        sent=sent,
        late=late,
        same_customer_in_flight=overlap,
        waited_for_connection=client.waited_for_slot,
        replaced_idle=client.replaced_idle,
        stopped_by_time_limit=stopped or (abandoned > 0 and not interrupted),
        interrupted=interrupted,
        send_seconds=max(0.0, last_send - start),
        answer_seconds=max(0.0, last_answer - start),
        sim_clock=sim_clock,
        feedback=feedback,
        examples=examples,
    )
