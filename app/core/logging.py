"""Structured JSON logs on stderr, one object per line.

Call sites pass their fields as ``extra={"fields": {...}}``. Customer ids never reach a
log line in clear: :func:`pseudonymise` turns them into a keyed hash (HMAC-SHA256), stable
within a deployment so an analyst can still follow one card, useless to anyone without
the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", **fields}`` as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's, Feast's) through the JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the service logs requests itself


def pseudonymise(value: str, key: bytes) -> str:
    """A keyed, truncated hash of an identifier for logs."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]
