"""Error responses: every bad request gets a clear 4xx that never echoes raw input.

- 400 malformed JSON: not one RFC 8259 document, not UTF-8, ``NaN``/``Infinity``, a
  repeated key or nesting over 32 levels (:mod:`app.api.json_body`)
- 401 missing or wrong API key
- 413 body over ``max_body_bytes`` (checked by :mod:`app.api.middleware`)
- 415 a content type other than JSON
- 422 a well-formed body that breaks the schema: the location and a fixed message per
  field, never the offending value (:func:`app.schemas.errors.field_errors`)

The error bodies themselves are :mod:`app.schemas.errors`; this module installs the
exception handlers that answer with them and documents them in OpenAPI.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.json_body import MalformedJSON
from app.schemas.errors import ErrorOut, ValidationErrorOut, field_errors
from system_of_record.store import RecordUnavailable

log = logging.getLogger(__name__)

_JSON_RULES = (
    "the body must be one JSON document in UTF-8 (RFC 8259: no NaN, Infinity or numbers "
    "beyond the float range)"
)

RECORD_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The system of record cannot be reached"}
}


def record_unavailable(exc: RecordUnavailable) -> HTTPException:
    """The 503 of a route whose answer is the system of record's (review, lists, dry-run)."""
    log.warning("system of record unavailable", extra={"fields": {"error": str(exc)}})
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the system of record cannot be reached; retry",
        headers={"Retry-After": "5"},
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON"},
    401: {"model": ErrorOut, "description": "Missing or invalid API key"},
    413: {"model": ErrorOut, "description": "Body over the size limit, or batch too large"},
    415: {"model": ErrorOut, "description": "Content type is not application/json"},
    422: {"model": ValidationErrorOut, "description": "The body breaks the schema"},
    429: {"model": ErrorOut, "description": "Over this API key's rate limit; see Retry-After"},
    503: {
        "model": ErrorOut,
        "description": "The service is starting or cannot record the prediction durably",
    },
}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = error.get("loc", ())
            where = f" at position {loc[1]}" if len(loc) == 2 and type(loc[1]) is int else ""
            return JSONResponse(
                {"detail": f"malformed JSON{where}: {_JSON_RULES}"},
                status_code=status.HTTP_400_BAD_REQUEST,
            )
    return JSONResponse(
        {"detail": field_errors(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if exc.status_code == status.HTTP_400_BAD_REQUEST and not isinstance(exc, MalformedJSON):
        # FastAPI's body-reading failure: its message could name the exception
        detail = "malformed body: it must be UTF-8 encoded JSON"
    return JSONResponse(
        {"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"fields": {"path": request.url.path}})
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
