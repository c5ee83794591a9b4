"""The latency-versus-load curve: the SVG with both stores' lines, deterministic, and the
open loop's p99 without the requests the generator sent late."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from benchmarks import loadgen
from benchmarks.latency_plot import write_plot

SVG = "{http://www.w3.org/2000/svg}"
SHARES = (10, 20, 30, 40, 50, 60, 70, 75, 80, 90)


def _store(saturation: float, p50: float) -> dict[str, Any]:
    return {
        "service": {
            "saturation": {"throughput_rps": saturation},
            "open_loop": [
                {"share": s, "p50_ms": p50, "p99_ms": p50 * (1 + s / 10), "late": 0} for s in SHARES
            ],
        }
    }


RESULTS: dict[str, Any] = {
    "deployed_store": "redis",
    "stores": {"redis": _store(1400, 0.9), "sqlite": _store(1300, 1.1)},
}


def _legend(svg: Path) -> list[str]:
    """Every text of the figure: matplotlib writes each as a comment before its glyphs."""
    return [text.strip() for text in re.findall(r"<!--(.*?)-->", svg.read_text(), re.S)]


def test_the_plot_is_an_svg_with_p50_and_p99_for_each_store(tmp_path: Path) -> None:
    path = write_plot(RESULTS, tmp_path / "curve.svg")
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    comments = _legend(path)
    for label in (
        "Redis (deployed) p99 (saturation 1,400 req/s)",
        "Redis (deployed) p50",
        "SQLite p99 (saturation 1,300 req/s)",
        "SQLite p50",
        "offered req/s on Redis",
        "target: p99 ≤ 10 ms at 75 %",
    ):
        assert label in comments, (label, comments)
    # one line per store and percentile with a point per level, and the two target lines
    lines = [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("line2d_")]
    drawn = [g for g in lines if len(_vertices(g)) == len(SHARES)]
    assert len(drawn) == 4
    straight = [g for g in lines if len(_vertices(g)) == 2]
    assert len(straight) >= 2  # 10 ms and 75 % (besides the ticks, drawn as markers)


def _vertices(group: ET.Element) -> list[str]:
    path = group.find(f"{SVG}path")
    if path is None:
        return []
    d = path.get("d", "")
    return [part for part in d.replace("\n", " ").split(" ") if part in ("M", "L")]


def test_the_same_results_give_the_same_bytes(tmp_path: Path) -> None:
    first = write_plot(RESULTS, tmp_path / "a.svg").read_bytes()
    second = write_plot(RESULTS, tmp_path / "b.svg").read_bytes()
    assert first == second
    assert b"<dc:date>" not in first


def test_the_on_time_p99_leaves_out_the_late_requests() -> None:
    run = loadgen.Run(seconds=1.0, on_time=[])
    for i in range(100):  # 99 on time at 1 ms, one late at 500 ms
        latency = 0.5 if i == 0 else 0.001
        loadgen._record(run, 200, latency)
        if i:
            run.on_time.append(latency)  # type: ignore[union-attr]
    run.late = 1
    summary = run.summary()
    assert summary["p99_on_time_ms"] == pytest.approx(1.0)
    assert summary["p99_ms"] > 5 and summary["max_ms"] == pytest.approx(500.0)
    assert "p99_on_time_ms" not in loadgen.Run(seconds=1.0).summary()  # not an open loop


def test_an_open_loop_counts_its_on_time_answers(static_port: int) -> None:
    import asyncio

    requests = loadgen.encode_requests("127.0.0.1", static_port, "/x", [b"{}"])
    run = asyncio.run(loadgen.open_loop("127.0.0.1", static_port, requests, 200, 0.5))
    assert run.on_time is not None
    assert len(run.on_time) == run.count - run.late
    assert run.summary()["p99_on_time_ms"] <= run.summary()["max_ms"]
