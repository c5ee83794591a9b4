"""Request schema: what is accepted, what is refused, and the documented defaults."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from pydantic import ValidationError

from app.schemas import BatchIn, TransactionIn

VALID: dict[str, Any] = {
    "transaction_id": "tx_0001",
    "customer_id": "C00042",
    "terminal_id": "T-0007",
    "timestamp": "2025-05-01T12:30:00+02:00",
    "amount": 42.5,
}


def test_a_minimal_transaction_gets_the_defaults() -> None:
    tx = TransactionIn.model_validate(VALID)
    assert (tx.channel, tx.entry_mode, tx.merchant_category) == ("in_person", "chip", None)
    assert (tx.is_foreign, tx.distance_from_home_km) == (False, 0.0)
    assert tx.timestamp.utcoffset() is not None
    assert TransactionIn.model_validate({**VALID, "amount": 100}).amount == 100.0


@pytest.mark.parametrize(
    "field,value",
    [
        ("amount", 0),
        ("amount", -1),
        ("amount", 1_000_000.01),
        ("amount", float("nan")),
        ("amount", float("inf")),
        ("amount", "42.5"),
        ("amount", True),
        ("transaction_id", ""),
        ("transaction_id", "x" * 65),
        ("customer_id", "robert'); DROP TABLE--"),
        ("customer_id", "caf\u00e9"),
        ("terminal_id", 7),
        ("timestamp", "2025-05-01T12:30:00"),
        ("timestamp", 1714566600),
        ("timestamp", "3025-01-01T00:00:00Z"),
        ("timestamp", "1999-12-31T23:59:59Z"),
        ("channel", "telepathy"),
        ("is_foreign", "yes"),
        ("is_foreign", 1),
        ("distance_from_home_km", -0.1),
        ("merchant_category", "casino"),
    ],
)
def test_bad_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        TransactionIn.model_validate({**VALID, field: value})


def test_unknown_and_missing_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TransactionIn.model_validate({**VALID, "cvv": "123"})
    with pytest.raises(ValidationError):
        TransactionIn.model_validate({k: v for k, v in VALID.items() if k != "amount"})


def test_batches_are_bounded() -> None:
    """At least one transaction; the cap is MAX_BATCH's 413, before validation
    (tests/api/test_predict.py), not a schema error."""
    assert len(BatchIn.model_validate({"transactions": [VALID] * 3}).transactions) == 3
    with pytest.raises(ValidationError):
        BatchIn.model_validate({"transactions": []})


@pytest.mark.parametrize(
    "stamp,utc",
    [
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999+00:00"),
        ("2016-12-31T23:59:60.5z", "2016-12-31T23:59:59.999999+00:00"),
        ("2016-12-31 18:59:60-05:00", "2016-12-31T23:59:59.999999+00:00"),
        ("2015-07-01T05:29:60+05:30", "2015-06-30T23:59:59.999999+00:00"),
    ],
)
def test_a_leap_second_is_the_last_instant_of_its_minute(stamp: str, utc: str) -> None:
    """RFC 3339 allows second 60 at the end of a UTC day: read as 23:59:59.999999."""
    tx = TransactionIn.model_validate({**VALID, "timestamp": stamp})
    assert tx.timestamp.astimezone(UTC).isoformat() == utc
    assert tx.timestamp.utcoffset() is not None


@pytest.mark.parametrize(
    "stamp",
    [
        "2016-12-31T23:58:60Z",  # not the last minute of the day
        "2016-12-31T22:59:60Z",
        "2016-12-31T23:59:60+01:00",  # 22:59:60 UTC
        "2016-12-31T23:59:61Z",
        "2016-12-31T24:00:00Z",
        "2016-13-31T23:59:60Z",
        "2016-12-31T23:59:60",  # no time zone
    ],
)
def test_other_second_60s_are_still_refused(stamp: str) -> None:
    with pytest.raises(ValidationError):
        TransactionIn.model_validate({**VALID, "timestamp": stamp})
