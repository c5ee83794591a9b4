"""Bad input gets a clear 4xx, never a 500, and the answer never echoes the input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.serving import as_request

pytestmark = pytest.mark.integration

SECRET = "Zq9-SECRET-VALUE"


@pytest.fixture
def body(recent: pd.DataFrame) -> dict[str, object]:
    return as_request(recent.iloc[0])


def _post(client: TestClient, raw: bytes, content_type: str = "application/json") -> object:
    return client.post("/v1/predict", content=raw, headers={"content-type": content_type})


@pytest.mark.parametrize(
    "raw",
    [b'{"transaction_id": ', b"[1, 2", b'{"a": 1} {"b": 2}'],
    ids=["truncated", "unclosed-array", "two-documents"],
)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    """More (empty, not UTF-8, NaN, duplicate keys, deep nesting): test_hostile_inputs.py."""
    response = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("malformed JSON at position ")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
def test_other_content_types_are_415(
    client: TestClient, body: dict[str, object], content_type: str
) -> None:
    response = _post(client, json.dumps(body).encode(), content_type)
    assert response.status_code == 415
    assert response.json() == {"detail": "content type must be application/json"}


def test_json_with_a_charset_is_accepted(client: TestClient, body: dict[str, object]) -> None:
    response = _post(client, json.dumps(body).encode(), "application/json; charset=utf-8")
    assert response.status_code == 200


def test_bodies_over_the_limit_are_413(client_for: object, body: dict[str, object]) -> None:
    client = client_for(max_body_bytes=2048)  # type: ignore[operator]
    padded = dict(body, transaction_id="x" * 4000)
    response = _post(client, json.dumps(padded).encode())
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream itself is counted
        yield b'{"transaction_id": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    streamed = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    "field,value",
    [  # NaN and Infinity are not JSON: 400 (test_hostile_inputs.py)
        ("amount", -5.0),
        ("amount", 0),
        ("amount", 1e12),
        ("amount", "12.5"),
        ("amount", True),
        ("customer_id", f"{SECRET}<script>"),
        ("customer_id", ""),
        ("customer_id", "c" * 65),
        ("terminal_id", "T'; DROP TABLE labels;--"),
        ("timestamp", "2025-06-04T12:00:00"),
        ("timestamp", "2999-01-01T00:00:00Z"),
        ("timestamp", f"yesterday {SECRET}"),
        ("channel", f"{SECRET}-channel"),
        ("is_foreign", "yes"),
        ("distance_from_home_km", -1),
        ("merchant_category", 7),
    ],
)
def test_schema_violations_are_422_without_echo(
    client: TestClient, body: dict[str, object], field: str, value: object
) -> None:
    response = _post(client, json.dumps(dict(body, **{field: value})).encode())
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [error["loc"] for error in detail][0][:2] == ["body", field]
    text = response.text
    assert SECRET not in text and "DROP TABLE" not in text and "<script>" not in text
    assert all(set(error) == {"loc", "msg", "type"} for error in detail)


def test_extra_and_missing_fields_are_422(client: TestClient, body: dict[str, object]) -> None:
    extra = _post(client, json.dumps(dict(body, card_number="4111111111111111")).encode())
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["type"] == "extra_forbidden"
    assert "4111" not in extra.text
    hostile_key = _post(client, json.dumps(dict(body, **{f"<{SECRET}>": 1})).encode())
    assert hostile_key.status_code == 422 and SECRET not in hostile_key.text
    missing = {k: v for k, v in body.items() if k != "amount"}
    response = _post(client, json.dumps(missing).encode())
    assert response.json()["detail"][0]["loc"] == ["body", "amount"]


def test_arrays_and_scalars_instead_of_objects_are_422(client: TestClient) -> None:
    for raw in (b"[]", b"42", b'"text"', b"null"):
        assert _post(client, raw).status_code == 422


def test_unknown_routes_and_methods_are_4xx(client: TestClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/predict").status_code == 405
