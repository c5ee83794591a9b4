"""make soak: the verdicts on synthetic windows, the report section, the mixed requests,
the windowed open loop, and a few seconds of the real soak against the tiny service."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import loadgen
from benchmarks.report import render
from benchmarks.server import free_port
from benchmarks.soak import feedback_requests, mixed, verdicts
from tests.bench.test_report import RESULTS

ROOT = Path(__file__).resolve().parents[2]


def _window(
    rss: float = 250.0, p50: float = 5.0, p99: float = 20.0, **changes: Any
) -> dict[str, Any]:
    window = {
        "end_s": 30.0,
        "sent": 1000,
        "ok": 1000,
        "non_2xx": 0,
        "transport": 0,
        "throughput_rps": 33.3,
        "p50_ms": p50,
        "p95_ms": p99 * 0.8,
        "p99_ms": p99,
        "max_ms": p99 * 2,
        "late": 0,
        "rss_mb": rss,
        "cpu_percent": 70.0,
        "open_files": 40,
    }
    window.update(changes)
    return window


def _windows(n: int = 10, **changes: Any) -> list[dict[str, Any]]:
    return [_window(end_s=30.0 * (i + 1), **changes) for i in range(n)]


def test_steady_windows_pass() -> None:
    result = verdicts(_windows(), rss_ready_mb=240.0)
    assert result["passed"]
    assert result["failures"] == {"passed": True, "failed": 0, "sent": 10_000, "soak_sent": 10_000}
    assert result["memory"]["growth"] == 0 and result["memory"]["growth_from_ready"] > 0


def test_memory_growth_of_4_percent_passes_and_6_fails() -> None:
    windows = _windows(rss=200.0)  # the warm-up window is the baseline, not the ready RSS
    windows[-1]["rss_mb"] = 208.0
    grown = verdicts(windows, rss_ready_mb=150.0)
    assert grown["passed"] and grown["memory"]["growth"] == pytest.approx(0.04)
    assert grown["memory"]["growth_from_ready"] == pytest.approx(208 / 150 - 1, abs=1e-4)
    windows[-1]["rss_mb"] = 212.0
    leaking = verdicts(windows, rss_ready_mb=150.0)
    assert not leaking["passed"] and not leaking["memory"]["passed"]
    assert leaking["memory"]["max_mb"] == 212.0
    assert leaking["failures"]["passed"] and leaking["latency"]["passed"]


@pytest.mark.parametrize("field", ["non_2xx", "transport"])
def test_a_single_failed_request_fails(field: str) -> None:
    windows = _windows()
    windows[4][field] = 1
    result = verdicts(windows, rss_ready_mb=250.0)
    assert not result["passed"] and result["failures"]["failed"] == 1


def test_a_failure_before_the_soak_fails() -> None:
    result = verdicts(_windows(), rss_ready_mb=250.0, before=(5000, 2))
    assert not result["failures"]["passed"]
    assert result["failures"]["failed"] == 2 and result["failures"]["sent"] == 15_000


def test_a_growing_p99_fails_but_one_spike_does_not() -> None:
    windows = _windows(10)  # window 1 is the warm-up; 9 windows, thirds of 3
    for w in windows[-3:]:
        w["p99_ms"] = 31.0  # 1.55x the first third's 20 ms
    result = verdicts(windows, rss_ready_mb=250.0)
    assert not result["latency"]["passed"]
    assert result["latency"]["p99_ratio"] == pytest.approx(1.55)
    assert result["latency"]["windows_per_third"] == 3

    spike = _windows(10)
    spike[0]["p99_ms"] = 500.0  # the warm-up does not count
    spike[-1]["p99_ms"] = 500.0  # one window of the last third: the median is unmoved
    assert verdicts(spike, rss_ready_mb=250.0)["latency"]["passed"]


def test_a_window_with_a_slow_median_fails() -> None:
    windows = _windows()
    windows[5]["p50_ms"] = 10.5  # 2.1x the median window p50
    result = verdicts(windows, rss_ready_mb=250.0)
    assert not result["latency"]["passed"] and result["latency"]["p50_ratio"] == 2.1
    windows[5]["p50_ms"] = None  # no answer at all in that window
    assert not verdicts(windows, rss_ready_mb=250.0)["latency"]["passed"]


def test_a_single_window_is_judged_against_itself() -> None:
    assert verdicts([_window()], rss_ready_mb=250.0)["passed"]


def _soak_record(windows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "machine": {**RESULTS["machine"], "commit": "def5678"},
        "settings": {
            "minutes": 10.0,
            "window_seconds": 30.0,
            "load": 0.7,
            "feedback_share": 0.05,
            "feedback_every": 20,
            "repeat_every": 100,
            "distinct_predictions": 6000,
            "warmup_seconds": 3.0,
            "capacity_seconds": 20.0,
            "pinned": True,
        },
        "command": "python -m benchmarks.soak --serve-python .venv/serve/bin/python",
        "service": {
            "ready_seconds": 3.0,
            "rss_ready_mb": 240.0,
            "warmup": {"requests": 700, "errors": 0},
            "capacity": {
                "measured": True,
                "connections": 32,
                "requests": 19_000,
                "errors": 0,
                "throughput_rps": 950.0,
            },
            "offered_rps": 665.0,
            "soak_seconds": 600.2,
            "rss_end_mb": 252.0,
            "windows": windows,
            "label_log": {"posted": 20_000, "recorded": 19_802, "bytes": 3 * 2**20},
            "audit_log_bytes": 60 * 2**20,
        },
        "verdicts": verdicts(windows, 240.0, (19_700, 0)),
    }


def test_the_report_shows_the_soak_section_only_with_a_soak() -> None:
    assert "Soak" not in render(RESULTS) and "make soak" not in render(RESULTS)
    windows = _windows(20)
    windows[-1]["rss_mb"] = 270.0
    page = render(RESULTS, _soak_record(windows))
    section = page[page.index("## Soak (issue #8)") :]
    for text in (
        "commit `def5678`",
        "Capacity 950 req/s (measured: closed loop, 32 connections, 20 s, 0 errors)",
        "**10 min**",
        "665 req/s offered",
        "| ≥ 10 min at 70 % of the measured capacity | 10 min at 70 % (600 s of open loop) "
        "| **met** |",
        "| zero failed requests | 0 of 39,700 (soak 20,000, warm-up and capacity 19,700) "
        "| **met** |",
        "+8.0 % (250 → 270 MiB)",
        "**not met**",
        "(1.00×)",
        "| 20 | 600 | 1,000 | 1,000 | 0 | 0 | 5.0 | 16.0 | 20.0 | 40.0 | 0 | 270.0 | 70 | 40 |",
        "19,802 transactions labelled",
        "audit log 60.0 MiB",
    ):
        assert text in section, text
    assert page.index("## Training") < page.index("## Soak")
    assert "The soak at the end comes from a run of its own, `make soak`" in page


def test_a_soak_rewrites_benchmarks_md_with_both_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import soak

    windows = _windows(20)
    windows[3]["transport"] = 1
    monkeypatch.setattr(soak, "run", lambda args: _soak_record(windows))
    results, markdown = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    paths = ["--out", str(tmp_path / "soak.json"), "--markdown", str(markdown)]
    assert soak.main([*paths, "--results", str(results)]) == 1  # a failed request
    assert not markdown.exists()  # no make bench figures yet: nothing to render
    results.write_text(json.dumps(RESULTS))
    assert soak.main([*paths, "--results", str(results), "--no-report"]) == 1
    assert not markdown.exists()
    assert soak.main([*paths, "--results", str(results)]) == 1
    page = markdown.read_text()
    assert "## The service over HTTP" in page and "## Soak (issue #8)" in page
    assert json.loads((tmp_path / "soak.json").read_text())["verdicts"]["failures"]["failed"] == 1


def test_feedback_is_mixed_in_with_new_ids_and_deliberate_repeats() -> None:
    predict = loadgen.encode_requests("127.0.0.1", 8000, "/v1/predict", [b'{"a":1}', b'{"a":2}'])
    labels = [(f"TX{i}", i % 2 == 0) for i in range(5)]
    stream = mixed(predict, feedback_requests(8000, labels, repeat_every=3), every=4)
    sent = list(itertools.islice(stream, 40))
    paths = [raw.split(b" ", 2)[1] for raw in sent]
    assert paths[:8] == [b"/v1/predict"] * 3 + [b"/v1/feedback"] + [b"/v1/predict"] * 3 + [
        b"/v1/feedback"
    ]
    assert paths.count(b"/v1/feedback") == 10
    bodies = []
    for raw in sent:
        head, body = raw.split(b"\r\n\r\n", 1)
        assert f"Content-Length: {len(body)}".encode() in head
        assert head.startswith((b"POST /v1/predict HTTP/1.1", b"POST /v1/feedback HTTP/1.1"))
        if b"/v1/feedback" in head:
            bodies.append(json.loads(body))
    ids = [b["transaction_id"] for b in bodies]
    # every third label comes after a repeat of the one before; the labels start again
    assert ids == ["TX0", "TX1", "TX1", "TX2", "TX3", "TX4", "TX4", "TX0", "TX1", "TX2"]
    assert all(b["is_fraud"] == (int(b["transaction_id"][2:]) % 2 == 0) for b in bodies)
    assert list(itertools.islice(mixed(predict, iter([]), every=0), 3)) == [*predict, predict[0]]


def test_open_loop_windows_count_each_request_once_without_a_pause(static_port: int) -> None:
    sent: list[int] = []

    def numbered() -> Iterator[bytes]:
        for n in itertools.count():
            sent.append(n)
            yield from loadgen.encode_requests("127.0.0.1", static_port, f"/{n}", [b"{}"])

    seen: list[tuple[int, int]] = []
    runs = asyncio.run(
        loadgen.open_loop_windows(
            "127.0.0.1", static_port, numbered(), 200, 1.0, 0.3,
            on_window=lambda i, run: seen.append((i, len(sent))),
        )
    )  # fmt: skip
    assert [run.count + run.errors for run in runs] == [60, 60, 60, 20]  # the last is 0.1 s
    assert sum(run.errors for run in runs) == 0 and len(sent) == 200  # an iterator, not cycled
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert [n for _, n in seen] == [60, 120, 180, 200]  # called as each window's last is sent
    assert all(0.25 < run.seconds < 0.5 for run in runs[:3])


@pytest.mark.slow
@pytest.mark.integration
def test_a_short_soak_of_the_real_service(
    tiny_bundle: Path,
    feast_repo: Path,
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import soak

    monkeypatch.chdir(ROOT)  # the service is `python -m app` from the workspace
    out = tmp_path / "soak.json"
    code = soak.main(
        [
            "--serve-python", sys.executable, "--port", str(free_port()),
            "--data", str(tiny_data / "v1" / "transactions.parquet"),
            "--bundle", str(tiny_bundle), "--feature-repo", str(feast_repo),
            "--transactions", "300", "--capacity", "40", "--load", "1", "--minutes", "0.1",
            "--window-seconds", "2", "--warmup-seconds", "1", "--feedback-share", "0.1",
            "--no-pin", "--log-dir", str(tmp_path), "--out", str(out), "--no-report",
        ]
    )  # fmt: skip
    record = json.loads(out.read_text())
    checks, service = record["verdicts"], record["service"]
    assert code == (0 if checks["passed"] else 1)
    assert checks["failures"] == {
        "passed": True,
        "failed": 0,
        "sent": checks["failures"]["sent"],
        "soak_sent": 240,
    }
    assert [w["sent"] for w in service["windows"]] == [80, 80, 80]
    assert all(w["rss_mb"] > 50 and w["open_files"] > 0 for w in service["windows"])
    assert checks["memory"]["passed"]  # seconds, not minutes: nothing can have leaked yet
    labels = service["label_log"]
    assert labels["posted"] >= 24 and labels["recorded"] >= 0.98 * labels["posted"]
    assert record["settings"]["feedback_every"] == 10 and not record["settings"]["pinned"]
    assert not list(tmp_path.glob("var-*"))  # the label and audit logs are gone
