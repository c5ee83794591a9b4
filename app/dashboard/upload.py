"""Score an uploaded CSV file and stream progress and results back.

The file is checked as a whole first, on a worker thread (UTF-8, a header with the
required columns, at least one row and at most ``DASHBOARD_UPLOAD_MAX_ROWS``, every row
as wide as the header), and each row is validated exactly as the batch command does it
(:func:`app.schemas.csv_rows.parse_row`, the API's schema). Rows are then scored in
chunks of at most 50 with :meth:`ScoringService.score_offline`; after each chunk the
upload pauses as long as the chunk took, so live requests get at least half of the
event loop while a file is scored. The answer is a stream of JSON lines, one event each:

- ``accepted``: row counts, the output columns and the first bad rows with their line
  numbers and why;
- ``chunk``: rows done so far and the scored CSV lines of this chunk (input columns plus
  the answer columns, in input order; a bad row keeps empty answers and its ``error``);
- ``done``: totals, decisions and seconds; or ``failed`` if scoring stopped part way.

One request carries the whole job, so it works behind a load balancer without sticky
sessions. Cells that a spreadsheet would run as a formula are defused with a leading
apostrophe (numbers such as ``-5`` are left alone).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from app.schemas import TransactionIn
from app.schemas.answers import ANSWER_COLUMNS, answer_cells, unanswered_cells
from app.schemas.csv_rows import error_text, parse_row
from app.services.scoring_service import ScoringService

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = tuple(
    name for name, info in TransactionIn.model_fields.items() if info.is_required()
)
OPTIONAL_COLUMNS = tuple(n for n in TransactionIn.model_fields if n not in REQUIRED_COLUMNS)
MAX_LISTED_ERRORS = 100
MAX_CHUNK = 50  # rows per lookup and prediction: a few ms of the event loop each
_YIELD_EVERY = 128  # rows parsed between two chances for the event loop to take the GIL
CSV_UPLOAD_PATH = "/dashboard/api/batch"  # the one route that takes text/csv
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UploadError(ValueError):
    """A file that cannot be scored at all; the message says why (answered 422)."""


class TooManyRows(UploadError):
    """More rows than the dashboard takes in one file (answered 413)."""


@dataclass(frozen=True)
class ParsedFile:
    """The upload's rows, each a valid transaction or the reason it is not."""

    columns: list[str]
    rows: list[dict[str, str]]
    items: list[TransactionIn | str]
    lines: list[int]

    @property
    def invalid(self) -> int:
        return sum(isinstance(item, str) for item in self.items)


def parse_upload(body: bytes, max_rows: int) -> ParsedFile:
    """Check and validate a CSV upload; raises :class:`UploadError` for a file that has
    no usable header or rows, :class:`TooManyRows` as soon as row ``max_rows + 1`` is
    read. Blocking: the caller runs it on a worker thread."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"the file is not UTF-8 text (byte {exc.start})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\0extra")
    try:
        header = reader.fieldnames
        if not header:
            raise UploadError("the file is empty: expected a header row")
        names = [name.strip() for name in header]
        if len(set(names)) != len(names):
            raise UploadError("the header repeats a column name")
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise UploadError(
                f"missing required columns: {', '.join(missing)} "
                f"(required: {', '.join(REQUIRED_COLUMNS)}; "
                f"optional: {', '.join(OPTIONAL_COLUMNS)})"
            )
        reader.fieldnames = names
        rows: list[dict[str, str]] = []
        items: list[TransactionIn | str] = []
        lines: list[int] = []
        for row in reader:
            if len(rows) == max_rows:
                raise TooManyRows(
                    f"the file has more than {max_rows:,} rows, the most the dashboard "
                    "scores at once; split it into smaller files"
                )
            if len(rows) % _YIELD_EVERY == 0:
                time.sleep(0.0005)  # hand the GIL to the event loop for a moment
            lines.append(reader.line_num)
            extra = row.pop("\0extra", None)
            items.append(_item(row, extra))
            rows.append({k: v if v is not None else "" for k, v in row.items()})
    except csv.Error as exc:
        raise UploadError(f"line {reader.line_num}: not valid CSV ({exc})") from exc
    if not rows:
        raise UploadError("the file has a header but no rows")
    columns = names + [c for c in ANSWER_COLUMNS if c not in names]
    return ParsedFile(columns, rows, items, lines)


def _item(row: dict[str, Any], extra: Any) -> TransactionIn | str:
    if extra is not None:
        return f"the row has {len(extra)} more cell(s) than the header"
    try:
        return parse_row(row)
    except ValidationError as exc:
        return error_text(exc)


def defuse(cell: str) -> str:
    """A cell a spreadsheet will show, not run: formulas get a leading apostrophe."""
    if cell.startswith(_FORMULA_START):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def header_line(columns: Sequence[str]) -> str:
    return _csv_lines(columns, [dict(zip(columns, columns, strict=True))])


def _csv_lines(columns: Sequence[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    for row in rows:
        writer.writerow({k: defuse(str(v)) for k, v in row.items()})
    return out.getvalue()


def _event(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"event": kind, **fields}) + b"\n"


def bad_rows(parsed: ParsedFile) -> list[dict[str, Any]]:
    """The first bad rows: line number, transaction id (when it has one) and why."""
    listed = []
    for item, row, line in zip(parsed.items, parsed.rows, parsed.lines, strict=True):
        if isinstance(item, str):
            listed.append(
                {"line": line, "transaction_id": row.get("transaction_id", ""), "error": item}
            )
            if len(listed) == MAX_LISTED_ERRORS:
                break
    return listed


async def score_events(
    service: ScoringService, parsed: ParsedFile, chunk: int
) -> AsyncIterator[bytes]:
    """The event stream for ``parsed`` (see the module docstring)."""
    started = time.perf_counter()
    total = len(parsed.rows)
    yield _event(
        "accepted",
        rows=total,
        invalid=parsed.invalid,
        columns=parsed.columns,
        header=header_line(parsed.columns),
        errors=bad_rows(parsed),
    )
    decisions: dict[str, int] = {}
    scored = 0
    version = service.predictor.version
    try:
        for begin in range(0, total, chunk):
            began = time.perf_counter()
            rows = parsed.rows[begin : begin + chunk]
            items = parsed.items[begin : begin + chunk]
            valid = [item for item in items if isinstance(item, TransactionIn)]
            answers = iter(await service.score_offline(valid) if valid else [])
            out = []
            for row, item in zip(rows, items, strict=True):
                if isinstance(item, TransactionIn):
                    prediction = next(answers)
                    decisions[prediction.decision] = decisions.get(prediction.decision, 0) + 1
                    out.append(row | answer_cells(prediction, version))
                    scored += 1
                else:
                    out.append(row | unanswered_cells(item))
            lines = _csv_lines(parsed.columns, out)
            held = time.perf_counter() - began
            yield _event("chunk", done=begin + len(rows), scored=scored, csv=lines)
            # Live requests get the loop for at least as long as this chunk took.
            await asyncio.sleep(held)
    except Exception as exc:  # the stream has begun: say so in it, never a torn 200
        log.error("dashboard upload failed", extra={"fields": {"error": repr(exc)}})
        yield _event("failed", message="scoring stopped part way; no file was produced")
        return
    yield _event(
        "done",
        rows=total,
        scored=scored,
        invalid=parsed.invalid,
        decisions=dict(sorted(decisions.items())),
        model_version=version,
        seconds=round(time.perf_counter() - started, 3),
    )


def chunk_size(rows: int, max_batch: int) -> int:
    """Rows per lookup: about 20 progress steps, 10 to ``MAX_CHUNK`` (and ``max_batch``),
    so a chunk holds the event loop (and the lookup thread) for a few ms at most."""
    return max(1, min(max_batch, MAX_CHUNK, max(10, -(-rows // 20))))


class UploadResponse(StreamingResponse):
    """The upload's event stream; ``on_close`` runs however the response ends (done,
    failed, or the client gone), so the pod's upload slot is always freed."""

    def __init__(
        self, content: AsyncIterator[bytes], on_close: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
