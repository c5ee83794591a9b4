"""A CSV row (all strings) as a validated transaction, or one line saying why it is not.

The batch command (``python -m app.batch``) and the dashboard's file upload
(:mod:`app.dashboard.upload`) read rows with :func:`parse_row`, so a file is validated
exactly as the API validates JSON (the same :class:`TransactionIn`); the answer columns
they write back are :mod:`app.schemas.answers`. It lives with the schemas because it is
the CSV form of the request schema: no I/O, no scoring.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.schemas.errors import field_errors
from app.schemas.transactions import TransactionIn

_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_NUMBERS = ("amount", "distance_from_home_km")


def parse_row(row: dict[str, str]) -> TransactionIn:
    """A CSV row (all strings) as a validated transaction; empty optional cells are absent."""
    values: dict[str, Any] = {k: v for k, v in row.items() if k in TransactionIn.model_fields}
    values = {k: v.strip() for k, v in values.items() if v is not None and v.strip() != ""}
    for name in _NUMBERS:
        if name in values:
            try:
                values[name] = float(values[name])
            except ValueError:
                values[name] = None  # rejected by the schema with a clear message
    if "is_foreign" in values:
        values["is_foreign"] = _BOOLEANS.get(values["is_foreign"].lower(), values["is_foreign"])
    return TransactionIn.model_validate(values)


def error_text(exc: ValidationError) -> str:
    """A row's validation errors in one line (field: message; never the bad value)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in field_errors(list(exc.errors()))
    )
