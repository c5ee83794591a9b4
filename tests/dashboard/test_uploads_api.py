"""Dashboard uploads through the real app: one per pod at a time, refused before the second
body is read; parsing off the event loop; a bounded row count; the slot always freed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from app.dashboard import api
from app.dashboard.upload import ParsedFile
from tests.serving import as_request

pytestmark = pytest.mark.integration

CSV = {"Content-Type": "text/csv"}
HEADER = "transaction_id,customer_id,terminal_id,timestamp,amount\n"


@pytest.fixture
def dash(client_for: Any, carded: tuple[Path, Path]) -> Any:
    bundle, card = carded

    def start(**overrides: Any) -> TestClient:
        client: TestClient = client_for(bundle_uri=str(bundle), model_card_dir=card, **overrides)
        return client

    return start


def _file(recent: pd.DataFrame, rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        r = as_request(recent.iloc[i % len(recent)])
        lines.append(f"u{i},{r['customer_id']},{r['terminal_id']},{r['timestamp']},{r['amount']}\n")
    return "".join(lines).encode()


def _last_event(text: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return event


class Watched:
    """A request body that records whether the server ever asked for it."""

    def __init__(self, body: bytes) -> None:
        self.body, self.read = body, False

    def __iter__(self) -> Iterator[bytes]:
        self.read = True
        yield self.body


def test_a_second_upload_is_refused_before_its_body_is_read(
    dash: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dash()
    reading, go_on = threading.Event(), threading.Event()
    real_body = Request.body

    async def slow_body(self: Request) -> bytes:
        """The first upload's body arrives slowly (the event loop stays free)."""
        if not reading.is_set():
            reading.set()
            for _ in range(1000):
                if go_on.is_set():
                    break
                await asyncio.sleep(0.01)
        return await real_body(self)

    monkeypatch.setattr(Request, "body", slow_body)
    first: dict[str, Any] = {}

    def upload() -> None:
        response = client.post("/dashboard/api/batch", content=_file(recent, 30), headers=CSV)
        first.update(status=response.status_code, last=_last_event(response.text))

    thread = threading.Thread(target=upload)
    thread.start()
    assert reading.wait(10)
    second = Watched(_file(recent, 5))
    busy = client.post("/dashboard/api/batch", content=second, headers=CSV)
    go_on.set()
    thread.join(30)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "5"
    assert "another file is being scored" in busy.json()["detail"]
    assert not second.read  # refused before its body was read
    assert first == {"status": 200, "last": first["last"]} and first["last"]["scored"] == 30
    # the slot is free again once the first file is done
    again = client.post("/dashboard/api/batch", content=_file(recent, 3), headers=CSV)
    assert again.status_code == 200 and _last_event(again.text)["event"] == "done"


def test_the_file_is_parsed_off_the_event_loop(
    dash: Any, recent: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dash()
    loops: list[bool] = []
    real_parse = api.parse_upload

    def spy(body: bytes, *args: Any) -> ParsedFile:
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)
        return real_parse(body, *args)

    monkeypatch.setattr(api, "parse_upload", spy)
    response = client.post("/dashboard/api/batch", content=_file(recent, 4), headers=CSV)
    assert response.status_code == 200 and loops == [False]


def test_files_over_the_row_limit_are_refused(dash: Any, recent: pd.DataFrame) -> None:
    client = dash(dashboard_upload_max_rows=50)
    over = client.post("/dashboard/api/batch", content=_file(recent, 51), headers=CSV)
    assert over.status_code == 413
    assert "more than 50 rows" in over.json()["detail"]
    tiny_rows = (HEADER + "x\n" * 5_000).encode()  # one-character rows: refused the same way
    assert client.post("/dashboard/api/batch", content=tiny_rows, headers=CSV).status_code == 413
    ok = client.post("/dashboard/api/batch", content=_file(recent, 50), headers=CSV)
    assert ok.status_code == 200 and _last_event(ok.text)["scored"] == 50
    page = client.get("/dashboard/batch").text
    assert "50 rows" in page  # the page states the limit


def test_the_slot_is_freed_after_every_refusal(dash: Any, recent: pd.DataFrame) -> None:
    client = dash(max_body_bytes=4096, dashboard_upload_max_rows=20)
    refusals = [
        (b"amount\n5\n", 422),  # missing columns
        (b"\xff\xfe", 422),  # not UTF-8
        (_file(recent, 21), 413),  # rows
        (_file(recent, 200), 413),  # bytes
    ]
    for body, code in refusals:
        assert client.post("/dashboard/api/batch", content=body, headers=CSV).status_code == code
        streamed = client.post("/dashboard/api/batch", content=iter([body]), headers=CSV)
        assert streamed.status_code == code  # a chunked body, over the limit as it streams
        good = client.post("/dashboard/api/batch", content=_file(recent, 3), headers=CSV)
        assert good.status_code == 200, code
    assert not client.app.state.dashboard.guards.uploads.busy  # type: ignore[attr-defined]
