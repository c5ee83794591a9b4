"""Checking an uploaded CSV: whole-file problems are refused, bad rows are kept with why."""

from __future__ import annotations

import pytest

from app.dashboard.upload import (
    REQUIRED_COLUMNS,
    UploadError,
    chunk_size,
    defuse,
    header_line,
    parse_upload,
)
from app.schemas import TransactionIn

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
    parsed = parse_upload(("\ufeff" + text).encode())  # a spreadsheet's BOM is fine
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
        parse_upload(body)


def test_spreadsheet_formulas_are_defused_but_numbers_kept() -> None:
    assert defuse('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert defuse("@SUM(A1)") == "'@SUM(A1)" and defuse("+1+2") == "'+1+2"
    assert defuse("-5") == "-5" and defuse("+3.5") == "+3.5" and defuse("plain") == "plain"
    assert header_line(["a", "b"]) == "a,b\r\n"


@pytest.mark.parametrize(
    ("rows", "limit", "size"),
    [(4, 1000, 25), (1000, 1000, 50), (8000, 1000, 250), (8000, 100, 100), (3, 1, 1)],
)
def test_chunks_give_about_twenty_progress_steps(rows: int, limit: int, size: int) -> None:
    assert chunk_size(rows, limit) == size
