"""The error bodies every client sees, and the one reduction of validation errors to them.

``{"detail": "..."}`` (:class:`ErrorOut`) for every 4xx and 5xx but a schema error, which
is ``{"detail": [{"loc", "msg", "type"}, ...]}`` (:class:`ValidationErrorOut`). Both the
API's 422 (:mod:`app.api.errors`) and a bad CSV row's ``error`` cell (the batch command,
the dashboard's upload: :mod:`app.schemas.csv_rows`) come from :func:`field_errors`: the
location and a fixed message per field, never the offending value (pydantic's ``input``
and ``ctx`` are dropped, and a field name that is not a plain identifier is replaced).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_MAX_MESSAGE = 200


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]


class ErrorOut(BaseModel):
    detail: str


def _location(loc: tuple[Any, ...]) -> list[str | int]:
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
        elif isinstance(part, str) and _SAFE_KEY.match(part):
            out.append(part)
        else:
            out.append("<unprintable key>")
    return out


def field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors reduced to location, message and type."""
    return [
        {
            "loc": _location(tuple(error.get("loc", ()))),
            "msg": str(error.get("msg", "invalid value"))[:_MAX_MESSAGE],
            "type": str(error.get("type", "value_error")),
        }
        for error in errors
    ]
