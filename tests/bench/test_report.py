"""BENCHMARKS.md: every target judged from the figures, met or not."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.report import render, targets


def _run(rps: float, p50: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {
        "requests": int(rps * 10),
        "errors": errors,
        "seconds": 10.0,
        "throughput_rps": rps,
        "p50_ms": p50,
        "p95_ms": p99 * 0.8,
        "p99_ms": p99,
        "max_ms": p99 * 2,
        "late": 0,
    }


RESULTS: dict[str, Any] = {
    "machine": {
        "cpu": "test CPU",
        "cores": 2,
        "memory_gib": 24.0,
        "python": "3.11.7",
        "platform": "Linux",
        "commit": "abc1234",
        "date": "2026-11-23 03:00 UTC",
    },
    "settings": {"seconds_per_level": 10.0, "distinct_requests": 6000, "pinned": True},
    "service": {
        "ready_seconds": 2.5,
        "rss_ready_mb": 240.0,
        "rss_after_load_mb": 250.0,
        "unloaded": _run(700, 1.2, 4.0),
        "saturation": {"connections": 32, **_run(1200, 20.0, 30.0)},
        "open_loop": [
            {"share": s, "offered_rps": 12 * s, **_run(12 * s, 2.0, 8.0)} for s in (25, 50, 75)
        ],
        "batch": [
            {"size": 100, "tx_per_second": 20000, **_run(200, 5, 9)},
            {"size": 1000, "tx_per_second": 60000, **_run(60, 30, 40)},
        ],
        "generator_ceiling_rps": 9000,
        "healthz_rps": 2500,
        "cold_starts": [{"ready_seconds": 2.5, "rss_ready_mb": 240.0}] * 3,
    },
    "naive": {
        "ready_seconds": 15.0,
        "rss_ready_mb": 750.0,
        "rss_after_load_mb": 760.0,
        "unloaded": _run(8, 120.0, 160.0),
        "saturation": {"connections": 8, **_run(10, 800.0, 1200.0)},
        "parity_max_abs_diff": 1e-15,
        "parity_checked": 50,
    },
    "inprocess": {
        "transactions": 2000,
        "sum_of_medians_us": 900.0,
        "stages": {"feature lookup": {"median_us": 300.0, "p99_us": 500.0}},
        "alternatives": {"explanation: exact TreeSHAP": {"median_us": 1000.0, "p99_us": 1400.0}},
    },
    "training": {
        "external": {
            "rows": 300000,
            "seconds": 120.0,
            "phase_seconds": {"training": 100.0},
            "test_rows": 60000,
            "test_auprc": 0.8,
        },
        "pipeline": {
            "mode": "scratch",
            "stages": [
                {"stage": "train", "seconds": 116.0, "ran": True},
                {"stage": "evaluate", "seconds": 30.0, "ran": False},
            ],
        },
    },
    "total_seconds": 400.0,
}


def test_all_targets_met_when_the_figures_meet_them() -> None:
    verdicts = {name: verdict for name, _, verdict in targets(RESULTS)}
    assert len(verdicts) == 8
    assert all(v == "**met**" for v in verdicts.values()), verdicts


def test_each_target_fails_on_its_own_figure() -> None:
    worse = copy.deepcopy(RESULTS)
    worse["service"]["saturation"]["throughput_rps"] = 900
    worse["service"]["unloaded"]["p50_ms"] = 1.6
    worse["service"]["open_loop"][2]["errors"] = 1
    worse["service"]["batch"][1]["tx_per_second"] = 49_000
    worse["service"]["cold_starts"][1] = {"ready_seconds": 3.2, "rss_ready_mb": 240.0}
    worse["service"]["rss_after_load_mb"] = 301.0
    verdicts = {name: verdict for name, _, verdict in targets(worse)}
    failed = {name for name, verdict in verdicts.items() if verdict == "**not met**"}
    assert failed == {
        "≥ 1,000 req/s on one core, full path",
        "p99 ≤ 10 ms at 75 % of saturation",
        "unloaded p50 ≤ 1.5 ms",
        "batch of 1,000: ≥ 50,000 tx/s per core",
        "cold start to ready ≤ 3 s",
        "resident memory ≤ 300 MB per worker",
    }
    # 900 / 10 = 90x the naive baseline: still met
    assert verdicts["≥ 10× the naive baseline's throughput"] == "**met**"


def test_the_page_shows_figures_and_ratios() -> None:
    page = render(RESULTS)
    for text in (
        "test CPU",
        "abc1234",
        "| saturation: 32 connections, closed loop | 1,200 |",
        "120×",
        "60,000",
        "exact TreeSHAP",
        "300,000 rows",
        "train 116 s",
        "evaluate 30 s (up to date)",
        "1.0e-15 on 50 transactions",
    ):
        assert text in page, text
