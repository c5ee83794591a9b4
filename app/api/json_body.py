"""Strict JSON request bodies: exactly one RFC 8259 document, read one way only.

FastAPI reads JSON bodies with ``json.loads``, which accepts ``NaN`` and ``Infinity``,
guesses UTF-16 or UTF-32 from the bytes, accepts a byte-order mark, keeps the *last* of
repeated keys (other parsers keep the first: a parser differential) and raises
``RecursionError`` on deep nesting. Routes built with :class:`StrictJSONRoute` read the
body with :func:`parse_json` instead:

- orjson parses it: UTF-8 only (no BOM, no encoded surrogates), no ``NaN``/``Infinity``,
  no number that overflows to infinity, no lone surrogate escape; anything else is a
  ``json.JSONDecodeError`` that FastAPI turns into ``json_invalid`` (400, app.api.errors);
- objects and arrays nest at most :data:`MAX_DEPTH` levels (a batch needs 3);
- an object names each key once.

Both of the latter raise :class:`MalformedJSON` (400 with a fixed message). The duplicate
check costs a count, not a second parse: orjson keeps one value per key, so the body has a
repeated key only if it holds more ``"<whitespace>:`` sequences (one per key, plus any
inside strings) than the parsed objects hold keys. Only then is the body parsed again,
with an ``object_pairs_hook`` that sees every pair, to tell a repeated key from a colon
inside a string. orjson is faster than ``json.loads``, so the strict parse costs no more
than the lenient one it replaces (measured in docs/serving.md, "Bad input").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute

MAX_DEPTH = 32
_WHITESPACE = b" \t\n\r"


class MalformedJSON(HTTPException):
    """A syntactically valid body that is still refused (400); the detail is fixed text."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_400_BAD_REQUEST, detail)


TOO_DEEP = f"malformed JSON: objects and arrays nest deeper than {MAX_DEPTH} levels"
DUPLICATE_KEY = "malformed JSON: duplicate key in an object (each key at most once)"


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


_PAIRS = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def _count_keys(value: dict[str, Any] | list[Any]) -> int:
    """The keys of every object in ``value``, walked level by level up to ``MAX_DEPTH``."""
    keys = 0
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for node in level:
            if type(node) is dict:
                keys += len(node)
                items = node.values()
            else:
                items = node
            below += [item for item in items if type(item) is dict or type(item) is list]
        if not below:
            return keys
        level = below
    raise MalformedJSON(TOO_DEEP)


def parse_json(body: bytes) -> Any:
    """The body as Python data; see the module docstring for what is refused."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:
            raise MalformedJSON(TOO_DEEP) from None
        raise
    if type(value) is not dict and type(value) is not list:
        return value
    if _count_keys(value) != body.translate(None, _WHITESPACE).count(b'":'):
        try:  # a repeated key, or a '"' followed by ':' inside a string
            _PAIRS.decode(body.decode())
        except _DuplicateKey:
            raise MalformedJSON(DUPLICATE_KEY) from None
    return value


class StrictJSONRequest(Request):
    """A request whose ``json()`` is :func:`parse_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose body is read by :class:`StrictJSONRequest` (FastAPI's
    documented "custom Request and APIRoute class")."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
