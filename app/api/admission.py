"""Admission control in front of scoring: a bounded number of requests in flight per route,
and a fast 503 with ``Retry-After`` for the rest.

Single transactions (``POST /v1/predict``) and batches (``POST /v1/predict/batch``) have
budgets of their own, so batches can never take the singles' places. A request holds a
place from the moment its body has been received (it is then in scoring, or queued for it)
until its answer is ready (the response starts); a client still sending its body, or slowly
reading its answer, holds none, so slow clients cannot fill the budget (the edge's timeouts
deal with them). The singles' budget also adapts to a latency target (:class:`Budget`).

A request that arrives while its budget is full is refused at once, before its body is
read or parsed and before the API key is checked: a shed costs less than any other answer,
and it says nothing about keys. A request let in whose body completes while the budget has
meanwhile filled is refused then (:class:`Overloaded`, through the error handlers). Every
shed counts in ``fraud_shed_total{route}`` and shows in the access log as ``"shed"``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import orjson
from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.metrics import ServiceMetrics

MIN_ALLOWED = 8.0  # the adaptive number admitted at once never goes below this


class Budget:
    """Requests of one route admitted at once (in scoring or queued for it).

    With a ``target_s``, the number admitted at once adapts between ``MIN_ALLOWED`` and ``limit``
    (additive increase, multiplicative decrease, as TCP's window): an answer that took
    longer than the target from admission halves it, at most once per round (only answers
    to requests admitted since the last cut count); an answer within the target adds one
    per round (``1 / allowed`` each). So the admitted requests keep their latency when the
    pod has less CPU than ``limit`` assumes (a noisy neighbour, throttling, batches). It
    never goes below ``MIN_ALLOWED``: a few slow answers at low load (a cold start, a
    collection) shed nothing.
    """

    def __init__(self, route: str, limit: int, target_s: float | None = None) -> None:
        self.route = route
        self.limit = limit
        self.target_s = target_s
        self.allowed = float(limit)
        self._admitted: dict[int, float] = {}  # ticket -> admission time
        self._tickets = itertools.count()
        self._cut_at = float("-inf")

    @property
    def in_flight(self) -> int:
        return len(self._admitted)

    @property
    def full(self) -> bool:
        return len(self._admitted) >= min(self.limit, int(self.allowed))

    def admit(self, now: float) -> int:
        ticket = next(self._tickets)
        self._admitted[ticket] = now
        return ticket

    def release(self, ticket: int, now: float) -> None:
        admitted = self._admitted.pop(ticket, None)
        if admitted is None or self.target_s is None:
            return
        if now - admitted <= self.target_s:
            self.allowed = min(float(self.limit), self.allowed + 1 / self.allowed)
        elif admitted > self._cut_at:
            self.allowed = max(min(float(self.limit), MIN_ALLOWED), self.allowed / 2)
            self._cut_at = now


@dataclass(frozen=True)
class RouteName:
    """Stands in for the route of a request refused before routing, so the access log and
    the request metrics name its template instead of ``unmatched``."""

    path: str


def overloaded_detail(route: str) -> str:
    return f"overloaded: too many {route} requests in flight on this instance; retry later"


class Overloaded(HTTPException):
    """The budget filled while the request's body was arriving (503, ``Retry-After``). An
    ``HTTPException``, so FastAPI's body reader passes it on to the error handlers."""

    def __init__(self, route: str, retry_after_s: int) -> None:
        super().__init__(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            overloaded_detail(route),
            headers={"Retry-After": str(retry_after_s)},
        )


class AdmissionMiddleware:
    """See the module docstring: one :class:`Budget` per scoring path (POST only)."""

    def __init__(
        self,
        app: ASGIApp,
        single_limit: int,
        batch_limit: int,
        retry_after_s: int,
        metrics: ServiceMetrics,
        single_target_s: float | None = None,
    ) -> None:
        self.app = app
        self.budgets = {
            "/v1/predict": Budget("/v1/predict", single_limit, single_target_s),
            "/v1/predict/batch": Budget("/v1/predict/batch", batch_limit),
        }
        self.retry_after_s = retry_after_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        budget = self.budgets.get(scope["path"]) if scope["type"] == "http" else None
        if budget is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if budget.full:
            await self._shed(scope, send, budget)
            return
        ticket: int | None = None

        async def admitting_receive() -> Message:
            nonlocal ticket
            message = await receive()
            if (
                ticket is None
                and message["type"] == "http.request"
                and not message.get("more_body", False)
            ):
                if budget.full:
                    self._count(scope, budget)
                    raise Overloaded(budget.route, self.retry_after_s)
                ticket = budget.admit(time.perf_counter())
            return message

        async def releasing_send(message: Message) -> None:
            # The answer is ready: its place is free, however slowly the client reads it.
            if message["type"] == "http.response.start" and ticket is not None:
                budget.release(ticket, time.perf_counter())
            await send(message)

        try:
            await self.app(scope, admitting_receive, releasing_send)
        finally:
            if ticket is not None:
                budget.release(ticket, time.perf_counter())

    def _count(self, scope: Scope, budget: Budget) -> None:
        self.metrics.shed.labels(budget.route).inc()
        state = scope.setdefault("state", {})
        state["log"] = {**state.get("log", {}), "shed": True}

    async def _shed(self, scope: Scope, send: Send, budget: Budget) -> None:
        self._count(scope, budget)
        scope["route"] = RouteName(budget.route)
        body = orjson.dumps({"detail": overloaded_detail(budget.route)})
        await send(
            {
                "type": "http.response.start",
                "status": status.HTTP_503_SERVICE_UNAVAILABLE,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.retry_after_s).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
