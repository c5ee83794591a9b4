"""Checking an uploaded CSV: whole-file problems are refused, bad rows are kept with why."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest

from app.dashboard.upload import (
    REQUIRED_COLUMNS,
    TooManyRows,
    UploadError,
    chunk_size,
    defuse,
    header_line,
    parse_upload,
    score_events,
)
from app.schemas import TransactionIn
from app.services.predictor import Prediction

HEADER = "transaction_id,customer_id,terminal_id,timestamp,amount"
GOOD = "t1,C1,T1,2025-06-01T12:00:00Z,10.5"


def test_valid_and_invalid_rows_keep_their_order_and_line_numbers() -> None:
    text = "\n".join(
        [
            HEADER + ",channel,note",
            GOOD + ",online,first",
            "t2,C1,T1,yesterday,-5,by_pigeon,second",
            "t3,C2,T2,2025-06-01T12:01:00+02:00,7,,third",
            "t4,C2,T2,2025-06-01T12:02:00Z,7,online,x,one too many",
        ]
    )
    parsed = parse_upload(("\ufeff" + text).encode(), 100)  # a spreadsheet's BOM is fine
    assert parsed.columns[:7] == [*REQUIRED_COLUMNS, "channel", "note"]
    assert parsed.columns[-1] == "error"
    assert [type(i).__name__ for i in parsed.items] == [
        "TransactionIn",
        "str",
        "TransactionIn",
        "str",
    ]
    assert parsed.lines == [2, 3, 4, 5] and parsed.invalid == 2
    bad = parsed.items[1]
    assert isinstance(bad, str)
    assert "timestamp" in bad and "amount" in bad and "channel" in bad
    assert "yesterday" not in bad and "pigeon" not in bad  # never echoes the bad value
    assert parsed.items[3] == "the row has 1 more cell(s) than the header"
    third = parsed.items[2]
    assert isinstance(third, TransactionIn) and third.channel == "in_person"  # empty: default
    assert parsed.rows[0]["note"] == "first"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (
            b"transaction_id,amount\nt1,5\n",
            "missing required columns: customer_id, terminal_id, timestamp",
        ),
        ((HEADER + ",amount\n" + GOOD + ",1\n").encode(), "repeats a column"),
        ((HEADER + "\n").encode(), "header but no rows"),
    ],
)
def test_files_that_cannot_be_scored_say_why(body: bytes, message: str) -> None:
    with pytest.raises(UploadError, match=message):
        parse_upload(body, 100)


def test_spreadsheet_formulas_are_defused_but_numbers_kept() -> None:
    assert defuse('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert defuse("@SUM(A1)") == "'@SUM(A1)" and defuse("+1+2") == "'+1+2"
    assert defuse("-5") == "-5" and defuse("+3.5") == "+3.5" and defuse("plain") == "plain"
    assert header_line(["a", "b"]) == "a,b\r\n"


@pytest.mark.parametrize(
    ("rows", "limit", "size"),
    [(4, 1000, 10), (400, 1000, 20), (8000, 1000, 50), (8000, 30, 30), (3, 1, 1)],
)
def test_chunks_are_small_enough_to_share_the_event_loop(rows: int, limit: int, size: int) -> None:
    assert chunk_size(rows, limit) == size


def test_the_row_limit_bounds_time_and_memory_for_tiny_rows() -> None:
    body = (HEADER + "\n" + "x\n" * 520_000).encode()  # 1 MiB of one-character rows
    tracemalloc.start()
    try:
        with pytest.raises(TooManyRows, match="more than 20,000 rows"):
            parse_upload(body, 20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20  # the whole file parsed took hundreds of MiB (and ~40 s)
    exact = parse_upload((HEADER + "\n" + "x\n" * 200).encode(), 200)
    assert len(exact.rows) == 200 and exact.invalid == 200


class Slow:
    """A scoring service whose scoring holds the event loop, as assembly and
    prediction of a chunk do."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.predictor = type("P", (), {"version": "v1"})()

    async def score_offline(self, transactions: Sequence[Any]) -> list[Prediction]:
        self.sizes.append(len(transactions))
        time.sleep(0.004)  # no await: the loop is held
        return [
            Prediction(0.1, "low", "approve", None, None, [], "model", []) for _ in transactions
        ]


def test_scoring_a_file_lets_other_requests_run_between_chunks() -> None:
    rows = "\n".join(f"t{i},C1,T1,2025-06-01T12:00:00Z,{i + 1}" for i in range(400))
    parsed = parse_upload(f"{HEADER}\n{rows}\n".encode(), 1_000)
    service = Slow()

    async def run() -> tuple[list[bytes], list[int], float]:
        ticks = [0]
        seen: list[int] = []
        busy = asyncio.Event()

        async def other_requests() -> None:
            while not busy.is_set():
                ticks[0] += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_requests())
        began = time.perf_counter()
        events = []
        async for event in score_events(service, parsed, chunk_size(400, 1000)):  # type: ignore[arg-type]
            events.append(event)
            seen.append(ticks[0])
        busy.set()
        await ticker
        return events, seen, time.perf_counter() - began

    events, seen, seconds = asyncio.run(run())
    assert json.loads(events[-1])["scored"] == 400
    assert max(service.sizes) <= 50 and sum(service.sizes) == 400
    # other work ran between every two chunks (the upload never holds the loop twice in a row)
    chunks = seen[1:-1]
    assert all(later > earlier for earlier, later in zip(chunks, chunks[1:], strict=False))
    # and the upload paused about as long as it held the loop: at most half the loop's time
    assert seconds >= 2 * 0.004 * len(service.sizes)
