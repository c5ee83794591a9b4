"""The one row → request builder (benchmarks/transactions.py): every field of a simulator
row lands in the request schema, for each kind of row its callers pass."""

from __future__ import annotations

import math

import orjson
import pandas as pd
import pytest

from app.schemas import TransactionIn
from benchmarks.replay.stream import as_request as replay_request
from benchmarks.transactions import (
    LABELLED_FIELDS,
    REQUEST_FIELDS,
    DataError,
    csv_row,
    flag,
    request_body,
)

ROWS = pd.DataFrame(
    {
        "transaction_id": ["TX1", "TX2"],
        "customer_id": ["C000001", "C000002"],
        "terminal_id": ["T000001", "T000002"],
        "timestamp": pd.to_datetime(
            ["2025-04-16 00:14:38", "2025-04-16 09:00:00.25"], utc=True, format="ISO8601"
        ),
        "amount": [12.5, 3.0],
        "merchant_category": ["grocery", "electronics"],
        "channel": ["in_person", "online"],
        "entry_mode": ["chip", "manual"],
        "is_foreign": pd.Series([0, 1], dtype="int8"),
        "distance_from_home_km": [3.25, 1450.0],
        "is_fraud": [False, True],
        "fraud_scenario": ["none", "card_testing"],
    }
)


def test_a_simulator_row_becomes_a_valid_strict_request() -> None:
    first = next(ROWS.itertuples(index=False))
    body = request_body(first)
    assert body == {
        "transaction_id": "TX1",
        "customer_id": "C000001",
        "terminal_id": "T000001",
        "timestamp": "2025-04-16T00:14:38+00:00",
        "amount": 12.5,
        "merchant_category": "grocery",
        "channel": "in_person",
        "entry_mode": "chip",
        "is_foreign": False,
        "distance_from_home_km": 3.25,
    }
    assert tuple(body) == REQUEST_FIELDS and set(body) == set(TransactionIn.model_fields)
    assert LABELLED_FIELDS == (*REQUEST_FIELDS, "is_fraud")
    parsed = TransactionIn.model_validate_json(orjson.dumps(body))  # strict: real JSON types
    assert parsed.amount == 12.5 and parsed.is_foreign is False


def test_series_rows_and_tuple_rows_give_the_same_body() -> None:
    for i, row in enumerate(ROWS.itertuples(index=False)):
        assert request_body(ROWS.iloc[i]) == request_body(row)
    to_dicts = ROWS.to_dict("records")  # what bench built its bodies from before
    assert [request_body(r)["amount"] for r in ROWS.itertuples()] == [
        float(d["amount"]) for d in to_dicts
    ]


def test_changes_replace_fields_in_place() -> None:
    row = ROWS.iloc[1]
    body = request_body(row, transaction_id="demo-1", amount=round(float(row.amount) * 20, 2))
    assert list(body) == list(REQUEST_FIELDS)
    assert (body["transaction_id"], body["amount"], body["is_foreign"]) == ("demo-1", 60.0, True)
    assert body["timestamp"] == "2025-04-16T09:00:00.250000+00:00"  # sub-second kept


def test_the_csv_form_and_the_replay_form() -> None:
    row = ROWS.iloc[1]
    line = csv_row(row)
    assert line["is_foreign"] == "true" and {**line, "is_foreign": True} == request_body(row)
    replayed = replay_request(row)
    assert replayed["timestamp"] == "2025-04-16T09:00:00.250000Z"
    assert TransactionIn.model_validate(replayed) == TransactionIn.model_validate(request_body(row))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (0, False), (1, True), ("True", True), (" no ", False), ("1", True)],
)
def test_flags(value: object, expected: bool) -> None:
    assert flag(value) is expected


@pytest.mark.parametrize("value", [2, "maybe", math.nan])
def test_a_bad_flag_is_a_data_error(value: object) -> None:
    with pytest.raises(DataError):
        flag(value)
