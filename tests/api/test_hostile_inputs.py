"""A catalogue of hostile inputs: each gets the exact 4xx with a clear message, the answer
never echoes it, the model never sees it, and the logs stay one escaped JSON line each.

Every hostile body also carries ``SECRET`` (a valid transaction id), so "never echoed,
never logged" is checked on a value the service could have copied. Already covered in
``test_errors.py`` and not repeated here: truncated JSON, two documents, unclosed arrays,
``text/plain``/form/multipart content types on ``/v1/predict``, the 413 limit as a setting,
single-field schema violations on ``/v1/predict`` (negative and zero amounts, amounts as
strings, booleans, SQL and ``<script>`` in ids, naive and year-2999 timestamps, unknown
enum values), extra and missing fields, and ``[]``/scalars/``null`` as the body of
``/v1/predict``. ``test_predict.py`` covers a batch over the ``MAX_BATCH`` setting (413).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.api.json_body import MAX_DEPTH, MalformedJSON, StrictJSONRoute, parse_json
from app.api.routes import feedback, health, model, predict
from app.core.logging import JsonFormatter
from tests.serving import as_request

pytestmark = pytest.mark.integration

SECRET = "Zq9-HOSTILE"
JSON = {"content-type": "application/json"}
RAW = "@@RAW@@"
PREDICT, BATCH, FEEDBACK = "/v1/predict", "/v1/predict/batch", "/v1/feedback"

Body = Callable[[dict[str, Any]], "bytes | Iterator[bytes]"]


@dataclass(frozen=True)
class Hostile:
    """One hostile request: ``expect`` is a fragment of the 4xx ``detail`` (a string), or
    the location of the first 422 error (a tuple)."""

    id: str
    path: str
    body: Body
    status: int
    expect: str | tuple[str | int, ...]
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    leaks: tuple[str, ...] = ()  # more raw fragments that must not come back or be logged


def _tx(tx: dict[str, Any], path: str, **changes: Any) -> dict[str, Any]:
    """The valid body of ``path`` for transaction ``tx``, with ``changes``."""
    if path == FEEDBACK:
        return {"transaction_id": SECRET, "is_fraud": True, "source": "chargeback", **changes}
    one = {**tx, "transaction_id": SECRET, **changes}
    return {"transactions": [one]} if path == BATCH else one


def changed(path: str, **changes: Any) -> Body:
    return lambda tx: json.dumps(_tx(tx, path, **changes)).encode()


def raw_field(path: str, name: str, raw: bytes) -> Body:
    """A valid body whose field ``name`` holds the raw JSON text ``raw``."""
    return lambda tx: json.dumps(_tx(tx, path, **{name: RAW})).encode().replace(b'"@@RAW@@"', raw)


def duplicated(path: str, key: bytes, first: bytes) -> Body:
    """A valid body preceded by ``key: first`` inside the same (innermost) object."""

    def build(tx: dict[str, Any]) -> bytes:
        text = json.dumps(_tx(tx, path)).encode()
        at = text.rindex(b"{") + 1  # the transaction itself in a batch
        return text[:at] + key + b": " + first + b", " + text[at:]

    return build


def constant(raw: bytes) -> Body:
    return lambda tx: raw


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def oversized_batch(tx: dict[str, Any]) -> bytes:  # over the 1 MiB default on Content-Length
    return json.dumps({"transactions": [dict(tx, transaction_id=SECRET)] * 4_000}).encode()


def streamed(tx: dict[str, Any]) -> Iterator[bytes]:  # no Content-Length: the stream is counted
    yield b'{"transaction_id": "' + SECRET.encode()
    for _ in range(1_100):
        yield SECRET.encode() * 100
    yield b'", "is_fraud": true}'


BINARY = bytes(range(256)) * 4 + SECRET.encode()
UTF16 = json.dumps({"transaction_id": SECRET, "is_fraud": True}).encode("utf-16")
LONG = SECRET + "x" * 100_000
INJECTION = f'{SECRET}\r\n{{"level": "CRITICAL", "message": "forged"}}\n'
# the same string literal with its CR and LF unescaped, as a naive client would send it
RAW_INJECTION = json.dumps(INJECTION).encode().replace(b"\\r", b"\r").replace(b"\\n", b"\n")
SQL = f"1' OR '1'='1'; DROP TABLE labels;-- {SECRET}"
FUTURE, PAST = "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"

CATALOGUE = [
    # -- not one strict JSON document: 400 ------------------------------------------
    Hostile(
        "duplicate-key", PREDICT, duplicated(PREDICT, b'"amount"', b"0.5"), 400, "duplicate key"
    ),
    Hostile(
        "duplicate-key-escaped",
        PREDICT,
        duplicated(PREDICT, b'"\\u0061mount"', b"999999"),
        400,
        "duplicate key",
    ),
    Hostile(
        "duplicate-key-in-batch",
        BATCH,
        duplicated(BATCH, b'"customer_id"', f'"{SECRET}"'.encode()),
        400,
        "duplicate key",
    ),
    Hostile(
        "duplicate-key-feedback",
        FEEDBACK,
        duplicated(FEEDBACK, b'"is_fraud"', b"false"),
        400,
        "duplicate key",
    ),
    Hostile("deep-arrays-100k", PREDICT, constant(nested(100_000)), 400, "nest deeper than 32"),
    Hostile(
        "deep-field-batch",
        BATCH,
        raw_field(BATCH, "transactions", nested(MAX_DEPTH)),
        400,
        "nest deeper than 32",
    ),
    Hostile(
        "deep-objects-feedback",
        FEEDBACK,
        constant(b'{"a": ' * 5_000 + b"1" + b"}" * 5_000),
        400,
        "nest deeper than 32",
    ),
    Hostile("nan", PREDICT, raw_field(PREDICT, "amount", b"NaN"), 400, "malformed JSON"),
    Hostile("infinity", BATCH, raw_field(BATCH, "amount", b"Infinity"), 400, "malformed JSON"),
    Hostile(
        "minus-infinity",
        PREDICT,
        raw_field(PREDICT, "distance_from_home_km", b"-Infinity"),
        400,
        "malformed JSON",
    ),
    Hostile("1e309", PREDICT, raw_field(PREDICT, "amount", b"1e309"), 400, "malformed JSON"),
    Hostile(
        "400-digit-integer",
        PREDICT,
        raw_field(PREDICT, "amount", b"1" + b"0" * 400),
        400,
        "malformed JSON",
    ),
    Hostile(
        "invalid-utf8",
        PREDICT,
        raw_field(PREDICT, "customer_id", b'"\xff\xfe' + SECRET.encode() + b'"'),
        400,
        "malformed JSON",
    ),
    Hostile(
        "utf8-encoded-surrogate",
        FEEDBACK,
        raw_field(FEEDBACK, "source", b'"\xed\xa0\x80' + SECRET.encode() + b'"'),
        400,
        "malformed JSON",
    ),
    Hostile(
        "lone-surrogate-escape",
        PREDICT,
        raw_field(PREDICT, "terminal_id", b'"\\ud800' + SECRET.encode() + b'"'),
        400,
        "malformed JSON",
    ),
    Hostile(
        "utf16-body",
        FEEDBACK,
        constant(UTF16),
        400,
        "malformed JSON",
        headers={"content-type": "application/json; charset=utf-16"},
    ),
    Hostile(
        "byte-order-mark",
        PREDICT,
        lambda tx: b"\xef\xbb\xbf" + json.dumps(_tx(tx, PREDICT)).encode(),
        400,
        "malformed JSON",
    ),
    Hostile(
        "raw-control-character",
        PREDICT,
        raw_field(PREDICT, "customer_id", b'"\x1b[31m\x00' + SECRET.encode() + b'"'),
        400,
        "malformed JSON",
    ),
    Hostile(
        "raw-crlf-log-injection",
        FEEDBACK,
        raw_field(FEEDBACK, "transaction_id", RAW_INJECTION),
        400,
        "malformed JSON",
        leaks=("forged",),
    ),
    Hostile("binary-body", PREDICT, constant(BINARY), 400, "malformed JSON"),
    Hostile("single-quotes", BATCH, constant(b"{'transactions': []}"), 400, "malformed JSON"),
    Hostile("whitespace-body", BATCH, constant(b" \r\n\t "), 400, "malformed JSON"),
    # -- well-formed JSON that breaks the schema: 422 -----------------------------------
    Hostile("empty-body", PREDICT, constant(b""), 422, ("body",)),
    Hostile("empty-body-feedback", FEEDBACK, constant(b""), 422, ("body",)),
    Hostile(
        "escaped-crlf-log-injection",
        PREDICT,
        changed(PREDICT, customer_id=INJECTION),
        422,
        ("body", "customer_id"),
        leaks=("forged",),
    ),
    Hostile(
        "escaped-control-characters",
        FEEDBACK,
        changed(FEEDBACK, transaction_id=f"\x00\x07\x1b[2J{SECRET}\u2028"),
        422,
        ("body", "transaction_id"),
    ),
    Hostile(
        "non-ascii-and-emoji",
        BATCH,
        changed(BATCH, terminal_id=f"Ｔ💳{SECRET}é\u202e"),
        422,
        ("body", "transactions", 0, "terminal_id"),
        leaks=("💳", "\u202e"),
    ),
    Hostile(
        "very-long-id",
        PREDICT,
        changed(PREDICT, customer_id=LONG),
        422,
        ("body", "customer_id"),
    ),
    Hostile(
        "very-long-enum",
        PREDICT,
        changed(PREDICT, channel=LONG),
        422,
        ("body", "channel"),
    ),
    Hostile(
        "empty-id-feedback",
        FEEDBACK,
        changed(FEEDBACK, transaction_id=""),
        422,
        ("body", "transaction_id"),
    ),
    Hostile(
        "sql-injection",
        PREDICT,
        changed(PREDICT, terminal_id=SQL),
        422,
        ("body", "terminal_id"),
        leaks=("DROP TABLE",),
    ),
    Hostile(
        "sql-injection-feedback",
        FEEDBACK,
        changed(FEEDBACK, transaction_id=SQL),
        422,
        ("body", "transaction_id"),
        leaks=("DROP TABLE",),
    ),
    Hostile(
        "tiny-amount", PREDICT, raw_field(PREDICT, "amount", b"5e-324"), 422, ("body", "amount")
    ),
    Hostile(
        "underflow-amount",
        BATCH,
        raw_field(BATCH, "amount", b"1e-400"),
        422,
        ("body", "transactions", 0, "amount"),
    ),
    Hostile(
        "negative-zero", PREDICT, raw_field(PREDICT, "amount", b"-0.0"), 422, ("body", "amount")
    ),
    Hostile(
        "huge-amount", PREDICT, raw_field(PREDICT, "amount", b"1.7e308"), 422, ("body", "amount")
    ),
    Hostile(
        "huge-distance",
        PREDICT,
        raw_field(PREDICT, "distance_from_home_km", b"1e300"),
        422,
        ("body", "distance_from_home_km"),
    ),
    Hostile(
        "amount-as-object",
        PREDICT,
        changed(PREDICT, amount={"$gt": 0, "note": SECRET}),
        422,
        ("body", "amount"),
    ),
    Hostile(
        "id-as-number", PREDICT, changed(PREDICT, customer_id=12345), 422, ("body", "customer_id")
    ),
    Hostile("is-fraud-as-1", FEEDBACK, changed(FEEDBACK, is_fraud=1), 422, ("body", "is_fraud")),
    Hostile(
        "timestamp-as-number",
        PREDICT,
        changed(PREDICT, timestamp=1717500000),
        422,
        ("body", "timestamp"),
    ),
    Hostile(
        "timestamp-as-digits",
        PREDICT,
        changed(PREDICT, timestamp="1717500000"),
        422,
        ("body", "timestamp"),
    ),
    Hostile("null-field", PREDICT, changed(PREDICT, amount=None), 422, ("body", "amount")),
    Hostile("null-body-batch", BATCH, constant(b"null"), 422, ("body",)),
    Hostile("array-body-feedback", FEEDBACK, constant(b"[]"), 422, ("body",)),
    Hostile("scalar-body-batch", BATCH, constant(f'"{SECRET}"'.encode()), 422, ("body",)),
    Hostile(
        "object-instead-of-list",
        BATCH,
        lambda tx: json.dumps({"transactions": _tx(tx, PREDICT)}).encode(),
        422,
        ("body", "transactions"),
    ),
    Hostile(
        "list-instead-of-object",
        BATCH,
        lambda tx: json.dumps({"transactions": [list(_tx(tx, PREDICT).items())]}).encode(),
        422,
        ("body", "transactions", 0),
    ),
    Hostile(
        "naive-timestamp-batch",
        BATCH,
        changed(BATCH, timestamp="2025-06-04T12:00:00"),
        422,
        ("body", "transactions", 0, "timestamp"),
    ),
    Hostile("far-future", PREDICT, changed(PREDICT, timestamp=FUTURE), 422, ("body", "timestamp")),
    Hostile("far-past", PREDICT, changed(PREDICT, timestamp=PAST), 422, ("body", "timestamp")),
    Hostile(
        "before-2000",
        BATCH,
        changed(BATCH, timestamp="1970-01-01T00:00:00Z"),
        422,
        ("body", "transactions", 0, "timestamp"),
    ),
    Hostile(
        "extra-field-feedback",
        FEEDBACK,
        changed(FEEDBACK, note=SECRET),
        422,
        ("body", "note"),
    ),
    Hostile(
        "control-character-key",
        BATCH,
        lambda tx: json.dumps({**_tx(tx, BATCH), f"\x00{SECRET}\n": 1}).encode(),
        422,
        ("body", "<unprintable key>"),
    ),
    Hostile("empty-batch", BATCH, constant(b'{"transactions": []}'), 422, ("body", "transactions")),
    Hostile(
        "batch-of-1001",
        BATCH,
        lambda tx: json.dumps({"transactions": [dict(tx, transaction_id=SECRET)] * 1_001}).encode(),
        413,  # as documented (docs/serving.md), counted before the transactions are validated
        "at most 1000 transactions per batch",
    ),
    # -- refused before routing: 413, 415 ------------------------------------------------
    Hostile("oversized-body", BATCH, oversized_batch, 413, "body larger than 1048576 bytes"),
    Hostile("oversized-stream", FEEDBACK, streamed, 413, "body larger than 1048576 bytes"),
    Hostile(
        "no-content-type",
        BATCH,
        changed(BATCH),
        415,
        "content type must be application/json",
        headers={},
    ),
    Hostile(
        "text-plain-feedback",
        FEEDBACK,
        changed(FEEDBACK),
        415,
        "content type must be application/json",
        headers={"content-type": "text/plain"},
    ),
    Hostile(
        "xml",
        PREDICT,
        constant(f"<tx><id>{SECRET}</id></tx>".encode()),
        415,
        "content type must be application/json",
        headers={"content-type": "application/xml"},
    ),
    Hostile(
        "json-lookalike-type",
        BATCH,
        changed(BATCH),
        415,
        "content type must be application/json",
        headers={"content-type": "application/jsonx"},
    ),
]


class _Lines(logging.Handler):
    """Every log record as the service writes it (the JSON formatter's output)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged(client_for: Callable[..., TestClient]) -> Iterator[tuple[TestClient, _Lines]]:
    client = client_for(log_level="INFO")  # the access log is INFO
    lines = _Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    yield client, lines
    root.removeHandler(lines)


def _total(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


def _work(client: TestClient) -> tuple[float, float]:
    """Transactions scored and labels recorded so far."""
    metrics = client.get("/metrics").text
    return _total(metrics, "fraud_decisions_total"), _total(metrics, "fraud_feedback_total")


def test_the_catalogue_has_one_case_per_id() -> None:
    ids = [case.id for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {case.path for case in CATALOGUE} == {PREDICT, BATCH, FEEDBACK}


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.id for case in CATALOGUE])
def test_hostile_input_is_refused_cleanly(
    logged: tuple[TestClient, _Lines], recent: pd.DataFrame, case: Hostile
) -> None:
    client, log = logged
    before = _work(client)
    start = len(log.lines)
    response = client.post(
        case.path, content=case.body(as_request(recent.iloc[0])), headers=case.headers
    )
    emitted = log.lines[start:]

    assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    if isinstance(case.expect, str):
        assert isinstance(detail, str) and case.expect in detail, detail
    else:
        assert detail[0]["loc"][: len(case.expect)] == list(case.expect), detail
        assert all(set(error) == {"loc", "msg", "type"} and error["msg"] for error in detail)

    leaks = (SECRET, *case.leaks)
    answer = response.text + str(response.headers)
    assert not [leak for leak in leaks if leak in answer], "the answer echoes the input"
    assert _work(client) == before, "a refused request reached the model or the label log"

    accessed = [orjson.loads(line) for line in emitted if '"logger":"app.access"' in line]
    assert [entry["status"] for entry in accessed] == [case.status]
    for line in emitted:  # one JSON object per line, the hostile input nowhere in it
        assert "\n" not in line and "\r" not in line
        assert isinstance(orjson.loads(line), dict)
        assert not [leak for leak in leaks if leak in line], line[:300]


def test_a_hostile_request_id_is_replaced_not_logged(
    logged: tuple[TestClient, _Lines], recent: pd.DataFrame
) -> None:
    """Also the positive control of the catalogue: an accepted request moves the counters."""
    client, log = logged
    scored, labelled = _work(client)
    response = client.post(
        PREDICT,
        json=as_request(recent.iloc[0]),
        headers={"X-Request-Id": f"{SECRET}<script>\t'--"},
    )
    assert response.status_code == 200
    assert SECRET not in response.headers["x-request-id"]
    assert not [line for line in log.lines if SECRET in line]
    assert client.post(FEEDBACK, json={"transaction_id": "tx-1", "is_fraud": True}).is_success
    assert _work(client) == (scored + 1, labelled + 1)


# -- the strict parser itself --------------------------------------------------------------


def _refusal(body: bytes) -> str:
    try:
        parse_json(body)
    except MalformedJSON as exc:
        return str(exc.detail)
    except json.JSONDecodeError:  # what FastAPI answers as json_invalid (400)
        return "json_invalid"
    return "accepted"


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": ":x", "b": "\\":", "c": "\\"  :"}',  # colons after quotes inside strings
        b'{"a" : 1 ,\r\n "b"\t:\n2}',
        b'[{"a": 1}, {"a": 1}, {"a": {"a": 1}}]',  # the same key in different objects
        b'{"transactions": [{"a": "2025-06-04T12:00:00+00:00"}]}',
        b'"just a string"',
        b"12.5",
        b"[]",
        nested(MAX_DEPTH),
    ],
)
def test_strict_parser_accepts_what_json_loads_reads_the_same(body: bytes) -> None:
    assert parse_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body,refusal",
    [
        (b'{"a": 1, "a": 1}', "duplicate key"),
        (b'{"a": 1, "\\u0061": 2}', "duplicate key"),
        (b'[{"x": {"b": 1, "c": ":", "b": 2}}]', "duplicate key"),
        (nested(MAX_DEPTH + 1), "nest deeper"),
        (b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "nest deeper"),
        (nested(2_000), "nest deeper"),
        (b"NaN", "json_invalid"),
        (b"[Infinity]", "json_invalid"),
        (b"1e309", "json_invalid"),
        (b'"\\udc00"', "json_invalid"),
        (b'"\xc0\xaf"', "json_invalid"),  # overlong UTF-8
        (b"\xef\xbb\xbf{}", "json_invalid"),
        (b"{} {}", "json_invalid"),
        (b"[1,]", "json_invalid"),
        (b"", "json_invalid"),
    ],
)
def test_strict_parser_refuses(body: bytes, refusal: str) -> None:
    assert refusal in _refusal(body)


def test_every_route_with_a_body_parses_strictly() -> None:
    routes = [
        route
        for module in (predict, feedback, model, health)
        for route in module.router.routes
        if isinstance(route, APIRoute) and route.body_field is not None
    ]
    assert {route.path for route in routes} == {PREDICT, BATCH, FEEDBACK}
    assert all(isinstance(route, StrictJSONRoute) for route in routes)
