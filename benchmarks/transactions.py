"""The one "simulator row → request" builder of the tools and tests.

A simulator transaction row (any object with the columns as attributes: a
``DataFrame.itertuples`` row or a ``Series``) becomes the JSON body of ``/v1/predict``
(``TransactionIn``) with :func:`request_body`, or a line of the dashboard's CSV upload with
:func:`csv_row`. Used by the replay, ``make bench``/``make soak``, ``locustfile.py``,
``tools/demo.py``, ``tools/screenshots.py`` and the tests (``tests/serving.py``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

REQUEST_FIELDS: tuple[str, ...] = (
    "transaction_id",
    "customer_id",
    "terminal_id",
    "timestamp",
    "amount",
    "merchant_category",
    "channel",
    "entry_mode",
    "is_foreign",
    "distance_from_home_km",
)
LABELLED_FIELDS: tuple[str, ...] = (*REQUEST_FIELDS, "is_fraud")  # a row with its truth

_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class DataError(ValueError):
    """Input that cannot become requests (missing columns, bad timestamps or flags)."""


def flag(value: Any) -> bool:
    """A boolean from a bool, a 0/1 number, or a CSV cell such as ``True`` or ``0``."""
    if isinstance(value, str):
        try:
            return _FLAGS[value.strip().lower()]
        except KeyError:
            raise DataError(f"not a boolean: {value!r}") from None
    if isinstance(value, float) and math.isnan(value):
        raise DataError("a boolean column has an empty cell")
    if value not in (0, 1):  # also True/False and numpy scalars
        raise DataError(f"not a boolean: {value!r}")
    return bool(value)


def rfc3339(ts: pd.Timestamp) -> str:
    """UTC RFC 3339 with ``Z`` (a time without a zone is read as UTC), sub-second digits
    kept when present."""
    utc = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    text = utc.isoformat()
    if not text.endswith("+00:00"):
        raise DataError(f"cannot format {ts!r} as UTC")
    return text[: -len("+00:00")] + "Z"


def request_body(row: Any, **changes: Any) -> dict[str, Any]:
    """The JSON body of ``/v1/predict`` for a simulator row: ids and categories as
    strings, ``timestamp`` in ISO 8601 with its offset (``+00:00`` for the simulator's UTC
    times), numbers as floats, ``is_foreign`` a JSON boolean; ``changes`` replace fields
    (keeping their place)."""
    body = {
        "transaction_id": str(row.transaction_id),
        "customer_id": str(row.customer_id),
        "terminal_id": str(row.terminal_id),
        "timestamp": row.timestamp.isoformat(),
        "amount": float(row.amount),
        "merchant_category": str(row.merchant_category),
        "channel": str(row.channel),
        "entry_mode": str(row.entry_mode),
        "is_foreign": flag(row.is_foreign),
        "distance_from_home_km": float(row.distance_from_home_km),
    }
    body.update(changes)
    return body


def csv_row(row: Any) -> dict[str, Any]:
    """A simulator row as a line of the dashboard's CSV upload (booleans as true/false)."""
    body = request_body(row)
    return {**body, "is_foreign": str(body["is_foreign"]).lower()}
