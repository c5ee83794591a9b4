"""Admission control (app.api.admission): a full budget answers a fast 503 with
Retry-After before the body is read; singles and batches have budgets of their own; a place
is held from body received to answer; the number admitted adapts to the latency target."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import orjson
import pandas as pd
import pytest
from starlette.types import Message, Receive, Scope, Send

from app.api.admission import AdmissionMiddleware, Budget
from app.core.config import Settings
from app.main import create_app
from app.services.metrics import ServiceMetrics
from tests.serving import as_request


class Held:
    """An inner app that reads the body, then answers 200 once released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body", False):
            pass
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _scope(path: str) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


def _body(reads: list[str] | None = None) -> Receive:
    async def receive() -> Message:
        if reads is not None:
            reads.append("read")
        return {"type": "http.request", "body": b"{}", "more_body": False}

    return receive


async def _call(app: Any, path: str, reads: list[str] | None = None) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(path), _body(reads), send)
    return sent


def _middleware(inner: Any, single: int = 2, batch: int = 1) -> AdmissionMiddleware:
    return AdmissionMiddleware(
        inner, single_limit=single, batch_limit=batch, retry_after_s=3, metrics=ServiceMetrics()
    )


def test_a_full_budget_answers_503_with_retry_after_without_reading_the_body() -> None:
    async def scenario() -> tuple[list[Message], list[str], AdmissionMiddleware]:
        inner = Held()
        admission = _middleware(inner, single=2)
        held = [asyncio.create_task(_call(admission, "/v1/predict")) for _ in range(2)]
        while inner.entered < 2:
            await asyncio.sleep(0)
        reads: list[str] = []
        refused = await _call(admission, "/v1/predict", reads)
        inner.release.set()
        await asyncio.gather(*held)
        return refused, reads, admission

    refused, reads, admission = asyncio.run(scenario())
    start, body = refused
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"3"
    assert headers[b"content-type"] == b"application/json"
    assert "overloaded" in orjson.loads(body["body"])["detail"]
    assert reads == []  # refused before a byte of the body was read
    shed = admission.metrics.registry.get_sample_value("fraud_shed_total", {"route": "/v1/predict"})
    assert shed == 1.0
    assert admission.budgets["/v1/predict"].in_flight == 0  # both places given back


def test_batches_and_singles_have_budgets_of_their_own() -> None:
    async def scenario() -> list[int]:
        inner = Held()
        admission = _middleware(inner, single=1, batch=1)
        first = asyncio.create_task(_call(admission, "/v1/predict"))
        while inner.entered < 1:
            await asyncio.sleep(0)
        batch = asyncio.create_task(_call(admission, "/v1/predict/batch"))
        while inner.entered < 2:  # the batch got in although the singles are full
            await asyncio.sleep(0)
        second_single = await _call(admission, "/v1/predict")
        second_batch = await _call(admission, "/v1/predict/batch")
        inner.release.set()
        done = await asyncio.gather(first, batch)
        return [m[0]["status"] for m in (*done, second_single, second_batch)]

    assert asyncio.run(scenario()) == [200, 200, 503, 503]


def test_a_client_still_sending_its_body_holds_no_place() -> None:
    async def scenario() -> tuple[int, int]:
        inner = Held()
        admission = _middleware(inner, single=1)
        more = asyncio.Event()

        async def dribbling() -> Message:
            await more.wait()
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: Message) -> None:
            pass

        slow = asyncio.create_task(admission(_scope("/v1/predict"), dribbling, send))
        await asyncio.sleep(0.01)
        in_flight = admission.budgets["/v1/predict"].in_flight
        fast = asyncio.create_task(_call(admission, "/v1/predict"))
        while inner.entered < 1:
            await asyncio.sleep(0)
        inner.release.set()
        status = (await fast)[0]["status"]
        more.set()
        await slow
        return in_flight, status

    in_flight, status = asyncio.run(scenario())
    assert in_flight == 0
    assert status == 200


def test_slow_answers_halve_the_admitted_and_fast_ones_grow_it_back() -> None:
    budget = Budget("/v1/predict", limit=64, target_s=0.1)
    tickets = [budget.admit(0.0) for _ in range(10)]
    for ticket in tickets:  # ten slow answers of one round: one cut
        budget.release(ticket, 0.5)
    assert budget.allowed == 32
    budget.release(budget.admit(1.0), 1.3)  # admitted after the cut, still slow: again
    assert budget.allowed == 16
    for _ in range(200):
        budget.release(budget.admit(2.0), 2.01)
    assert 16 < budget.allowed <= 64
    for t in range(10):  # never below MIN_ALLOWED: a few slow answers at low load shed nothing
        budget.release(budget.admit(10.0 + t), 11.0 + t)
    assert budget.allowed == 8
    for _ in range(2_000):
        budget.release(budget.admit(30.0), 30.01)
    assert budget.allowed > 8
    for _ in range(5_000):
        budget.release(budget.admit(3.0), 3.01)
    assert budget.allowed == 64
    assert not budget.full


def test_the_app_sheds_a_single_over_budget_with_ids_metric_and_log(
    settings_for: Callable[..., Settings],
    recent: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = orjson.dumps(as_request(recent.iloc[0]))

    async def post(app: Any) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        scope = {**_scope("/v1/predict"), "headers": headers}
        await app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    async def scenario() -> tuple[Any, Any, bytes]:
        app = create_app(settings_for(admission_single_limit=1, log_level="INFO"))
        async with app.router.lifespan_context(app):
            service = app.state.runtime.service
            release = asyncio.Event()
            score = service.score

            async def held(transactions: Any) -> Any:
                await release.wait()
                return await score(transactions)

            service.score = held
            first = asyncio.create_task(post(app))
            await asyncio.sleep(0.05)
            refused = await post(app)
            release.set()
            admitted = await first
            metrics = app.state.runtime.metrics.render()
        return admitted, refused, metrics

    admitted, refused, metrics = asyncio.run(scenario())
    assert admitted[0] == 200
    status, headers, answer = refused
    assert status == 503
    assert headers[b"retry-after"] == b"1"
    assert headers[b"x-request-id"]
    assert "overloaded" in orjson.loads(answer)["detail"]
    assert b'fraud_shed_total{route="/v1/predict"} 1.0' in metrics
    assert b'fraud_http_requests_total{method="POST",route="/v1/predict",status="503"}' in metrics
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    shed = [line for line in lines if line.get("logger") == "app.access" and line.get("shed")]
    assert [(line["route"], line["status"]) for line in shed] == [("/v1/predict", 503)]
