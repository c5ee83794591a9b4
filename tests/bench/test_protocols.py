"""BENCHMARKS.md's protocol comparison: both stacks' figures side by side, and the ratios."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.protocols import section
from benchmarks.report import render
from tests.bench.test_report import RESULTS


def _run(rps: float, p50: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {"requests": int(rps * 10), "errors": errors, "throughput_rps": rps,
            "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "max_ms": p99, "late": 0}  # fmt: skip


def _stack(name: str, rps: float, p99: float, rss: float, errors: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "runs": f"`{name}` command",
        "ready_seconds": 2.0,
        "rss_ready_mb": rss,
        "rss_after_load_mb": rss + 10,
        "unloaded": _run(500, 1.0, 2.0),
        "saturation": {"connections": 32, **_run(rps, 20.0, 40.0, errors)},
        "open_loop": [
            {"offered_rps": rate, **_run(rate, 1.5, p99)} for rate in (250.0, 500.0, 750.0)
        ],
    }


PROTOCOL: dict[str, Any] = {
    "seconds_per_level": 10.0,
    "rates_rps": [250.0, 500.0, 750.0],
    "stacks": [_stack("edge", 900, 8.0, 200.0, errors=3), _stack("httptools", 1200, 4.0, 190.0)],
    "machine": {"commit": "abc1234", "date": "2026-11-23 04:00 UTC"},
    "command": "python -m benchmarks --only protocol",
    "bundle": "/tmp/w/models/bundle",
    "feature_repo": "/tmp/w/feature_repo",
    "own_run": True,
}


def _row(lines: list[str], label: str) -> list[str]:
    """The cells after the label of the table row ``label``."""
    row = next(line for line in lines if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in row.strip("|").split("|")][1:]


def test_each_measure_shows_both_stacks_and_the_ratio() -> None:
    lines = section(PROTOCOL)
    assert _row(lines, "measure") == ["edge", "httptools", "edge / httptools"]
    assert _row(lines, "saturation req/s (32 connections)") == ["900", "1,200", "0.75×"]
    assert _row(lines, "open loop 750 req/s: p99 ms") == ["8.00", "4.00", "2.00×"]
    assert _row(lines, "RSS after the load MiB") == ["210", "200", ""]
    assert sum(line.startswith("| open loop ") for line in lines) == 6
    assert "Failed requests: edge 3, httptools 0." in "\n".join(lines)


def test_a_run_of_its_own_names_its_command_commit_bundle_and_features() -> None:
    text = "\n".join(section(PROTOCOL, same_run=False))
    assert "`python -m benchmarks --only protocol`" in text
    assert (
        "commit `abc1234`" in text
        and "`/tmp/w/models/bundle`" in text
        and "`/tmp/w/feature_repo`" in text
    )
    assert "Measured in this run" in "\n".join(section(PROTOCOL, same_run=True))


def test_the_page_keeps_its_sections_and_adds_the_comparison() -> None:
    results = copy.deepcopy(RESULTS)
    before = render(results)
    results["protocol"] = PROTOCOL
    after = render(results)
    assert "## HTTP protocol" not in before
    assert "## HTTP protocol: the edge protocol against httptools" in after
    assert "Measured in a run of its own" in after
    for heading in (line for line in before.splitlines() if line.startswith("#")):
        assert heading in after
