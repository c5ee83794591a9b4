"""The replay client (``python -m benchmarks.replay.client``): order, request bodies, label
policy, summary math, the loopback rule and time bound (against a stand-in service), the
API key file, and a short replay through the real service."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.schemas import FeedbackIn, TransactionIn
from benchmarks.http_client import Client, NotLoopback, Target, parse_url
from benchmarks.replay.client import main
from benchmarks.replay.report import render
from benchmarks.replay.runner import Answer, FeedbackTally, Run
from benchmarks.replay.stream import (
    Label,
    LabelSchedule,
    Transaction,
    as_request,
    read_transactions,
    select,
    to_transactions,
)
from benchmarks.replay.summary import build, finite, quality, snapshot_exposure, write
from tests.reliability.processes import free_port, serve
from tests.serving import as_request as serving_request

DAY = 86_400.0
T0 = datetime(2025, 4, 1, tzinfo=UTC).timestamp()


# --- a stand-in service ---------------------------------------------------------------


class FakeService:
    """Answers like the API (decline above 100, else approve; stale above 1,000) and logs
    (path, body) per request in arrival order. ``slow`` ids wait 2 s; ``chunked`` ids
    get a chunked answer."""

    def __init__(self, slow: frozenset[str] = frozenset(), chunked: frozenset[str] = frozenset()):
        self.slow, self.chunked = slow, chunked
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.keys: set[str | None] = set()
        self.lock = threading.Lock()
        self.port = 0

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.log.append((path, body))
        if path == "/v1/feedback":
            return {**body, "status": "recorded"}
        return {
            "transaction_id": body["transaction_id"],
            "fraud_probability": 0.5,
            "risk_level": "LOW",
            "decision": "decline" if body["amount"] > 100 else "approve",
            "ae_score": None,
            "clf_score": None,
            "reasons": [],
            "model_version": "fake-1",
            "decision_source": "model",
            "degraded": ["customer_features:stale"] if body["amount"] > 1000 else [],
            "latency_ms": 0.25,
        }

    def predictions(self) -> list[str]:
        return [b["transaction_id"] for p, b in self.log if p == "/v1/predict"]

    def labels(self) -> list[tuple[int, dict[str, Any]]]:
        """(position in the log, body) of every label."""
        return [(i, b) for i, (p, b) in enumerate(self.log) if p == "/v1/feedback"]


def _handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self) -> None:
            super().setup()  # headers and body go out in two writes: no Nagle delay
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, payload: dict[str, Any], chunked: bool = False) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"status": "ready"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service.keys.add(self.headers.get("X-API-Key"))
            tx = str(body.get("transaction_id"))
            if tx in service.slow:
                time.sleep(2.0)
            try:
                self._send(service.answer(self.path, body), chunked=tx in service.chunked)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout test)

    return Handler


@contextmanager
def running(service: FakeService) -> Iterator[FakeService]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    server.daemon_threads = True
    service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


# --- helpers ----------------------------------------------------------------------------


def frame(rows: list[tuple[str, float, float, int, str]]) -> pd.DataFrame:
    """Simulator rows from (id, simulated seconds, amount, is_fraud, scenario)."""
    return pd.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "timestamp": pd.to_datetime([r[1] for r in rows], unit="s", utc=True),
            "customer_id": [f"C{i % 3}" for i in range(len(rows))],
            "terminal_id": "T000001",
            "amount": [r[2] for r in rows],
            "merchant_category": "grocery",
            "channel": "in_person",
            "entry_mode": "chip",
            "is_foreign": pd.Series(
                [0, 1] * (len(rows) // 2) + [0] * (len(rows) % 2), dtype="int8"
            ),
            "distance_from_home_km": 3.5,
            "is_fraud": pd.Series([r[3] for r in rows], dtype="int8"),
            "fraud_scenario": [r[4] for r in rows],
        }
    )


def tx(name: str, seconds: float, fraud: bool = False, scenario: str = "none") -> Transaction:
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")
    return Transaction(name, "C1", seconds, day, fraud, scenario, b"{}")


def answer(decision: str, degraded: tuple[str, ...] = ()) -> Answer:
    return Answer(decision, degraded, "model", "v1", 1.0, 0.002)


def run_of(outcomes: list[Answer | str | None], sent: int | None = None) -> Run:
    return Run(
        outcomes=outcomes,
        sent=len(outcomes) if sent is None else sent,
        late=0,
        same_customer_in_flight=0,
        waited_for_connection=0,
        replaced_idle=0,
        stopped_by_time_limit=False,
        interrupted=False,
        send_seconds=1.0,
        answer_seconds=2.0,
        sim_clock=None,
        feedback=FeedbackTally(),
    )


def strict_json(path: Path) -> Any:
    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in {path}")

    return json.loads(path.read_text(), parse_constant=no_nan)


# --- summary math -----------------------------------------------------------------------

# (transaction, decision): four days, worked out by hand below.
CASES = [
    (tx("a", T0, True, "card_testing"), "decline"),  # day 1: TP
    (tx("b", T0 + 60, True, "card_testing"), "approve"),  # FN
    (tx("c", T0 + 120, False), "review"),  # FP
    (tx("d", T0 + 180, False), "approve"),  # TN
    (tx("e", T0 + DAY, False), "approve"),  # day 2: nothing to find, nothing alerted
    (tx("f", T0 + DAY + 1, False), "approve"),
    (tx("g", T0 + 2 * DAY, True, "account_takeover"), "step_up"),  # day 3: TP
    (tx("h", T0 + 2 * DAY + 1, False), "decline"),  # FP
    (tx("i", T0 + 2 * DAY + 2, False), "step_up"),  # FP
    (tx("j", T0 + 3 * DAY, True, "large_amount"), "approve"),  # day 4: FN, no alert
]


def test_quality_per_day_and_overall_by_hand() -> None:
    q = quality((t, answer(d)) for t, d in CASES)
    days = {d["date"]: d for d in q["by_day"]}
    assert list(days) == ["2025-04-01", "2025-04-02", "2025-04-03", "2025-04-04"]
    # day 1: 2 frauds, 2 alerts, 1 TP -> P = R = F1 = 1/2
    assert days["2025-04-01"] == {
        "date": "2025-04-01",
        "transactions": 4,
        "frauds": 2,
        "alerts": 2,
        "true_positives": 1,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
    }
    # day 2: no fraud and no alert: every ratio is undefined (null), not 0 and not NaN
    assert (days["2025-04-02"]["precision"], days["2025-04-02"]["recall"]) == (None, None)
    assert days["2025-04-02"]["f1"] is None
    # day 3: 1 fraud, 3 alerts, 1 TP -> P = 1/3, R = 1, F1 = 2PR / (P + R) = 1/2
    d3 = days["2025-04-03"]
    assert (d3["precision"], d3["recall"], d3["f1"]) == (0.3333, 1.0, 0.5)
    # day 4: 1 fraud, no alert -> P undefined, R = 0, F1 = 2 TP / (alerts + frauds) = 0
    d4 = days["2025-04-04"]
    assert (d4["precision"], d4["recall"], d4["f1"]) == (None, 0.0, 0.0)
    # overall: 10 transactions, 4 frauds, 5 alerts, 2 TP -> P = 0.4, R = 0.5, F1 = 4/9
    assert q["overall"] == {
        "transactions": 10,
        "frauds": 4,
        "alerts": 5,
        "true_positives": 2,
        "precision": 0.4,
        "recall": 0.5,
        "f1": 0.4444,
    }
    for key in ("transactions", "frauds", "alerts", "true_positives"):
        assert sum(d[key] for d in q["by_day"]) == q["overall"][key]
    assert q["recall_by_scenario"] == [
        {"scenario": "account_takeover", "frauds": 1, "caught": 1, "recall": 1.0},
        {"scenario": "card_testing", "frauds": 2, "caught": 1, "recall": 0.5},
        {"scenario": "large_amount", "frauds": 1, "caught": 0, "recall": 0.0},
    ]
    assert q["decisions"] == {"approve": 5, "decline": 2, "review": 1, "step_up": 2}


def test_failed_transactions_are_counted_and_excluded(tmp_path: Path) -> None:
    transactions = [t for t, _ in CASES] + [tx("k", T0 + 3 * DAY + 5, True), tx("l", T0 + 4 * DAY)]
    outcomes: list[Answer | str | None] = [answer(d) for _, d in CASES] + ["503", "timeout"]
    outcomes[0] = answer("decline", ("customer_features:stale", "terminal_features:new_entity"))
    outcomes[1] = answer("approve", ("customer_features:stale",))
    summary = build(transactions + [tx("m", T0 + 5 * DAY)], run_of(outcomes), {}, None, None)
    assert summary["answers"] == {"answered": 10, "failed": 2, "excluded_from_quality": 2}
    assert summary["quality"]["overall"]["frauds"] == 4  # "k" failed: not counted
    assert summary["errors"]["by_kind"] == {"503": 1, "timeout": 1}
    assert summary["errors"]["total"] == 2
    assert summary["run"]["rows_planned"] == 13 and summary["run"]["rows_not_sent"] == 1
    assert summary["run"]["achieved_rps"] == 5.0  # 10 answers over 2 s
    assert summary["degraded"]["answers"] == 2 and summary["degraded"]["share"] == 0.2
    assert summary["degraded"]["by_flag"] == {
        "customer_features:stale": 2,
        "terminal_features:new_entity": 1,
    }
    latency = summary["latency_ms"]
    assert latency["from_due"] == {"p50": 2.0, "p95": 2.0, "p99": 2.0, "max": 2.0}
    out = tmp_path / "s" / "summary.json"
    md = write(summary, out, render(summary))
    assert (
        md == tmp_path / "s" / "summary.md"
        and "| 2025-04-02 | 2 | 0 | 0 | 0 | – |" in md.read_text()
    )
    assert strict_json(out)["quality"]["by_day"][1]["precision"] is None


def test_an_empty_run_has_null_ratios_and_latencies() -> None:
    summary = build([tx("a", T0)], run_of(["connection"]), {}, None, None)
    assert summary["quality"]["overall"]["precision"] is None
    assert summary["latency_ms"]["from_due"]["p99"] is None
    assert summary["degraded"]["share"] is None
    assert finite({"x": [float("nan"), 1.0, float("inf")]}) == {"x": [None, 1.0, None]}


def test_snapshot_exposure_counts_transactions_older_than_the_online_store(tmp_path: Path) -> None:
    record = tmp_path / "materialized.json"
    record.write_text(
        json.dumps(
            {"backfill_start": "2025-04-02T12:00:00+00:00", "end": "2025-04-04T00:00:00+00:00"}
        )
    )
    exposure = snapshot_exposure(record, [t for t, _ in CASES])
    assert exposure["sent_before_snapshot_start"] == 6  # days 1 and 2
    assert exposure["sent_before_snapshot_end"] == 9
    assert exposure["snapshot_start"] == "2025-04-02T12:00:00Z"


# --- loopback only ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:8000", Target("127.0.0.1", 8000)),
        ("http://127.0.0.1", Target("127.0.0.1", 80)),
        ("http://[::1]:9000/", Target("::1", 9000)),
        ("http://localhost:8000", Target("localhost", 8000)),
    ],
)
def test_loopback_urls_are_accepted(url: str, target: Target) -> None:
    assert parse_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8000",
        "http://example.com",
        "http://0.0.0.0:8000",
        "http://127.0.0.2:8000",
        "http://[::ffff:127.0.0.1]:8000",
        "https://127.0.0.1:8000",
        "http://user:pw@127.0.0.1:8000",
        "http://127.0.0.1:8000/v1",
        "127.0.0.1:8000",
        "http://127.0.0.1:99999",
    ],
)
def test_other_hosts_are_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        parse_url(url)


def test_localhost_must_resolve_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(*_: Any, **__: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.20", 8000))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(NotLoopback, match="192.168.1.20"):
        parse_url("http://localhost:8000")


def test_the_command_refuses_a_remote_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            ["--data", str(tmp_path / "x.parquet"), "--rate", "1", "--url", "http://10.1.2.3:8000"]
        )
    assert exited.value.code == 2
    assert "only talks to a service on this machine" in capsys.readouterr().err


# --- rows, order, requests --------------------------------------------------------------


def test_rows_become_valid_strict_requests() -> None:
    rows = frame([("TX1", T0 + 0.25, 12.5, 0, "none"), ("TX2", T0 + 7, 0.01, 1, "card_testing")])
    first, second = list(rows.itertuples(index=False))
    body = as_request(first)
    assert body["timestamp"] == "2025-04-01T00:00:00.250000Z"  # Z, sub-second kept
    assert as_request(second)["timestamp"] == "2025-04-01T00:00:07Z"
    assert body["is_foreign"] is False and as_request(second)["is_foreign"] is True
    parsed = TransactionIn.model_validate(body)  # strict: no extra field, real JSON types
    expected = TransactionIn.model_validate(serving_request(first))
    assert parsed == expected
    schedule = LabelSchedule(0)
    schedule.on_sent(to_transactions(rows)[1])
    (label,) = schedule.pop_due(T0 + 7)
    assert FeedbackIn.model_validate_json(label.body()).source == "chargeback"


def test_stream_is_in_stable_timestamp_order(tmp_path: Path) -> None:
    rows = frame(
        [
            ("C", T0 + 30, 1, 0, "none"),
            ("A", T0 + 10, 1, 0, "none"),
            ("B2", T0 + 20, 1, 0, "none"),
            ("B1", T0 + 20, 1, 0, "none"),  # a tie: file order kept (B2 before B1)
            ("D", T0 + 40, 1, 0, "none"),
        ]
    )
    assert select(rows, None, None).transaction_id.tolist() == ["A", "B2", "B1", "C", "D"]
    start = pd.Timestamp(T0 + 20, unit="s", tz="UTC")
    assert select(rows, start, 3).transaction_id.tolist() == ["B2", "B1", "C"]
    rows.to_csv(tmp_path / "t.csv", index=False)
    rows.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv = to_transactions(select(read_transactions(tmp_path / "t.csv"), None, None))
    from_parquet = to_transactions(select(read_transactions(tmp_path / "t.parquet"), None, None))
    assert from_csv == from_parquet


# --- the label policy -------------------------------------------------------------------


def triples(labels: list[Label]) -> list[tuple[str, bool, str]]:
    return [(label.transaction_id, label.is_fraud, label.source) for label in labels]


def test_labels_fall_due_on_the_simulated_clock() -> None:
    schedule = LabelSchedule(delay_seconds=DAY)
    fraud, alert, quiet, fraud_unanswered = (
        tx("f1", T0, True),
        tx("a1", T0 + 10, False),
        tx("q1", T0 + 20, False),
        tx("f2", T0 + 30, True),
    )
    for t in (fraud, alert, quiet, fraud_unanswered):
        schedule.on_sent(t)
    schedule.on_answered(fraud, "approve")  # a missed fraud still gets its chargeback
    schedule.on_answered(alert, "review")  # alerted legitimate: analyst clears it
    schedule.on_answered(quiet, "approve")  # approved legitimate: nobody looks
    assert schedule.pop_due(T0 + DAY - 1) == []
    assert triples(schedule.pop_due(T0 + DAY)) == [("f1", True, "chargeback")]
    assert schedule.count(T0 + DAY + 10) == (1, 1)
    assert triples(schedule.pop_due(T0 + DAY + 29)) == [("a1", False, "analyst")]
    assert schedule.count(T0 + DAY + 29) == (0, 1)  # f2: sent, never answered, still pending
    (last,) = schedule.pop_due(T0 + 5 * DAY)
    assert json.loads(last.body()) == {
        "transaction_id": "f2",
        "is_fraud": True,
        "source": "chargeback",
    }
    assert schedule.pop_due(T0 + 10 * DAY) == []


# --- the client against a stand-in service ----------------------------------------------


def replay_file(
    tmp_path: Path, rows: pd.DataFrame, port: int, *args: str
) -> tuple[int, dict[str, Any]]:
    data = tmp_path / "stream.parquet"
    rows.to_parquet(data, index=False)
    out = tmp_path / "out" / "summary.json"
    argv = ["--data", str(data), "--url", f"http://127.0.0.1:{port}", "--out", str(out)]
    status = main([*argv, "--features-snapshot", "none", *args])
    return status, strict_json(out)


def shuffled_stream(n: int, hours: float) -> pd.DataFrame:
    """``n`` transactions ``hours`` apart, every 4th a fraud, every 3rd over 100, in a
    scrambled file order."""
    rows = [
        (
            f"T{i:03d}",
            T0 + i * hours * 3600,
            150.0 if i % 3 == 0 else 20.0,
            int(i % 4 == 1),
            "x" if i % 4 == 1 else "none",
        )
        for i in range(n)
    ]
    order = [(i * 7) % n for i in range(n)]  # 7 and n coprime: a permutation
    return frame([rows[i] for i in order])


def test_replay_sends_in_time_order_and_posts_labels_when_due(tmp_path: Path) -> None:
    rows = shuffled_stream(40, hours=2.4)  # 4 simulated days
    with running(FakeService()) as service:
        status, summary = replay_file(
            tmp_path,
            rows,
            service.port,
            "--rate",
            "400",
            "--max-in-flight",
            "1",
            "--label-delay-days",
            "1",
            "--api-key",
            "k-123",
        )
    assert status == 0 and service.keys == {"k-123"}  # on every POST, as X-API-Key
    ordered = rows.sort_values("timestamp").transaction_id.tolist()
    assert service.predictions() == ordered
    seconds = dict(
        zip(rows.transaction_id, rows.timestamp.map(lambda t: t.timestamp()), strict=True)
    )
    position = {
        b["transaction_id"]: i for i, (p, b) in enumerate(service.log) if p == "/v1/predict"
    }
    last = max(seconds.values())
    expected = {
        t: (f == 1)
        for t, f, amount in zip(rows.transaction_id, rows.is_fraud, rows.amount, strict=True)
        if (f == 1 or amount > 100) and seconds[t] + DAY <= last
    }
    labels = service.labels()
    assert {b["transaction_id"]: b["is_fraud"] for _, b in labels} == expected
    for at, body in labels:
        assert body["source"] == ("chargeback" if body["is_fraud"] else "analyst")
        # posted once the stream reached t + 1 day, not before
        clock = max(seconds[b["transaction_id"]] for p, b in service.log[:at] if p == "/v1/predict")
        assert clock >= seconds[body["transaction_id"]] + DAY
        assert position[body["transaction_id"]] < at
    fb = summary["feedback"]
    assert fb["posted"] == fb["ok"] == len(expected) and fb["outcomes"] == {
        "recorded": len(expected)
    }
    frauds_or_alerts = int(((rows.is_fraud == 1) | (rows.amount > 100)).sum())
    assert fb["pending"] == frauds_or_alerts - len(expected) and fb["due_not_posted"] == 0
    assert summary["answers"]["answered"] == summary["run"]["rows_sent"] == 40
    assert summary["quality"]["overall"]["frauds"] == 10
    assert summary["degraded"]["model_versions"] == {"fake-1": 40}
    assert summary["run"]["simulated_start"] == "2025-04-01T00:00:00Z"


def test_the_api_key_comes_from_a_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k-from-file\n")
    with running(FakeService()) as service:
        status, _ = replay_file(
            tmp_path, shuffled_stream(4, hours=1), service.port, "--rate", "100",
            "--api-key-file", str(key),
        )  # fmt: skip
    assert status == 0 and service.keys == {"k-from-file"}
    key.write_text("\n")
    with pytest.raises(SystemExit) as exited:
        replay_file(tmp_path, shuffled_stream(4, hours=1), 1, "--rate", "1", "--api-key-file",
                    str(key))  # fmt: skip
    assert exited.value.code == 2


def test_a_connection_the_server_closed_while_idle_is_replaced_not_an_error() -> None:
    async def scenario() -> tuple[list[int], int]:
        async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()  # keep-alive promised, then closed while idle

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        client = Client(Target("127.0.0.1", server.sockets[0].getsockname()[1]), 4, 2.0)
        statuses = []
        for _ in range(3):
            statuses.append((await client.request("GET", "/readyz")).status)
            await asyncio.sleep(0.05)
        client.close()
        server.close()
        return statuses, client.replaced_idle

    assert asyncio.run(scenario()) == ([200, 200, 200], 2)


def test_timeouts_and_chunked_answers_are_errors(tmp_path: Path) -> None:
    rows = shuffled_stream(12, hours=1)
    with running(FakeService(slow=frozenset({"T003"}), chunked=frozenset({"T005"}))) as service:
        status, summary = replay_file(
            tmp_path, rows, service.port, "--rate", "100", "--timeout", "0.5"
        )
    assert status == 1
    errors = summary["errors"]
    assert errors["total"] == 2 and errors["by_kind"] == {"protocol": 1, "timeout": 1}
    assert "Transfer-Encoding chunked" in errors["first_of_kind"]["protocol"]
    assert summary["answers"] == {"answered": 10, "failed": 2, "excluded_from_quality": 2}
    assert summary["quality"]["overall"]["transactions"] == 10


def test_max_seconds_stops_the_run_and_says_so(tmp_path: Path) -> None:
    rows = shuffled_stream(200, hours=0.5)
    began = time.perf_counter()
    with running(FakeService()) as service:
        status, summary = replay_file(
            tmp_path, rows, service.port, "--rate", "50", "--max-seconds", "0.5"
        )
    elapsed = time.perf_counter() - began
    assert status == 1 and elapsed < 3.0  # 4 s of stream planned
    run = summary["run"]
    assert run["stopped_by_time_limit"] is True
    assert 20 <= run["rows_sent"] <= 27 and run["rows_not_sent"] == 200 - run["rows_sent"]
    assert len(service.predictions()) == run["rows_sent"] == summary["answers"]["answered"]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Stopped by the time limit (0.5 s)" in md


# --- through the real service -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_a_short_replay_through_the_real_service(
    tiny_bundle: Path, feast_repo: Path, tiny_data: Path, tmp_path: Path
) -> None:
    v1 = pd.read_parquet(tiny_data / "v1" / "transactions.parquet")
    frauds = v1[v1.is_fraud == 1]
    legit = v1[v1.is_fraud == 0].iloc[::25]
    rows = pd.concat([frauds, legit]).sample(frac=1.0, random_state=3)  # scrambled file order
    state = tmp_path / "state"
    port = free_port()
    server = serve(port, tiny_bundle, feast_repo, state, tmp_path / "server.log")
    try:
        began = time.perf_counter()
        status, summary = replay_file(
            tmp_path,
            rows,
            port,
            "--rate",
            "150",
            "--label-delay-days",
            "1",
            "--max-in-flight",
            "32",
        )
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
    n = len(rows)
    run, answers = summary["run"], summary["answers"]
    assert status == 0 and summary["errors"]["total"] == 0
    assert run["rows_planned"] == run["rows_sent"] == answers["answered"] == n
    assert not run["stopped_by_time_limit"]
    assert n / 150 * 0.9 < run["send_seconds"] and elapsed < run["max_seconds"]
    overall = summary["quality"]["overall"]
    assert overall["transactions"] == n and overall["frauds"] == len(frauds)
    for key in ("transactions", "frauds", "alerts", "true_positives"):
        assert sum(d[key] for d in summary["quality"]["by_day"]) == overall[key]
    assert sum(s["frauds"] for s in summary["quality"]["recall_by_scenario"]) == len(frauds)
    latency = summary["latency_ms"]["from_due"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    # The service's own records: every transaction scored once; the labels due by the end
    # of the stream, and only those, recorded with the right source.
    with sqlite3.connect(state / "predictions.sqlite") as audit:
        decisions = dict(audit.execute("SELECT transaction_id, decision FROM predictions"))
    with sqlite3.connect(state / "labels.sqlite") as db:
        recorded = {
            r[0]: (bool(r[1]), r[2])
            for r in db.execute("SELECT transaction_id, is_fraud, source FROM labels")
        }
    assert set(decisions) == set(rows.transaction_id)
    last = rows.timestamp.max()
    expected = {
        r.transaction_id: (True, "chargeback") if r.is_fraud else (False, "analyst")
        for r in rows.itertuples()
        if (r.is_fraud or decisions[r.transaction_id] != "approve")
        and r.timestamp + timedelta(days=1) <= last
    }
    assert len(expected) > 0 and recorded == expected
    fb = summary["feedback"]
    assert fb["posted"] == fb["ok"] == len(expected) and not fb["errors"]
    alerted = {t for t, d in decisions.items() if d != "approve"}
    assert overall["alerts"] == len(alerted)
    assert fb["pending"] == len(alerted | set(frauds.transaction_id)) - len(expected)
    assert summary["service"]["status"] in ("ready", "degraded")
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# Replay summary")
