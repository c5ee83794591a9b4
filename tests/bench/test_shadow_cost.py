"""The shadow-cost and rule-cost reports: the counters read from the service's real
``/metrics`` exposition, the table's rows, and BENCHMARKS.md's sections replaced in place
(no service, no timing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.services.metrics import ServiceMetrics
from benchmarks.records import replace_section
from benchmarks.rules_report import TITLE as RULES_TITLE
from benchmarks.rules_report import section as rules_section
from benchmarks.shadow_report import (
    TITLE,
    ShadowCounters,
    section,
    shadow_counters,
    table,
    update_benchmarks,
)

MACHINE = {"date": "2026-12-06 20:00 UTC", "commit": "abc1234", "cores": 2, "cpu": "EPYC"}
LOAD = {"before": 1.5, "after": 2.25}


def _requests(rps: float, p50: float, errors: int = 0, count: int = 1000) -> dict[str, Any]:
    return {"requests": count, "errors": errors, "throughput_rps": rps, "p50_ms": p50,
            "p95_ms": p50 * 2, "p99_ms": p50 * 3, "late": 0}  # fmt: skip


def _record() -> dict[str, Any]:
    shadow = {"scored": 900, "dropped": {"busy": 0, "full": 100}, "queued": 0}
    return {
        "machine": MACHINE,
        "load_average": LOAD,
        "command": "python -m benchmarks.shadow_cost --seconds 15",
        "settings": {"seconds": 15.0, "connections": 16, "rates": [0.5], "pinned": True},
        "variants": {
            "no_shadow": {
                "saturation": {"requests": _requests(400.0, 10.0), "late_share": 0.0},
                "open_loop": [
                    {
                        "share": 0.5,
                        "offered_rps": 200.0,
                        "late_share": 0.0125,
                        "requests": _requests(199.6, 4.0),
                    }
                ],
            },
            "shadow": {
                "saturation": {
                    "requests": _requests(380.0, 11.0, count=1000),
                    "late_share": 0.0,
                    "shadow": shadow,
                },
                "open_loop": [
                    {
                        "share": 0.5,
                        "offered_rps": 200.0,
                        "late_share": 0.5,
                        "requests": _requests(0.0, float("nan"), 3000, 0),
                        "shadow": {"scored": 0, "dropped": {}, "queued": 0},
                    }
                ],
            },
        },
    }


def test_the_counters_come_from_the_services_own_exposition() -> None:
    metrics = ServiceMetrics()
    metrics.observe_shadow({("approve", "approve"): 3}, np.array([0.1, 0.2, 0.3]))
    metrics.observe_shadow_dropped("full", 5)
    metrics.observe_shadow_dropped("busy", 2)
    metrics.set_shadow_queue(7)
    counters = shadow_counters(metrics.render().decode())
    assert counters.scored == 3
    assert counters.dropped == {"full": 5, "busy": 2, "stopped": 0, "error": 0}
    assert counters.queued == 7
    assert shadow_counters("") == ShadowCounters()


def test_a_run_counts_only_what_happened_since_the_last_reading() -> None:
    before = ShadowCounters(10, {"full": 1, "busy": 0}, 4)
    after = ShadowCounters(25, {"full": 3, "busy": 2, "error": 1}, 0)
    assert after.minus(before).as_dict() == {
        "scored": 15,
        "dropped": {"busy": 2, "error": 1, "full": 2},
        "queued": 0,
    }


def test_the_table_has_a_row_per_run_and_the_shadows_share() -> None:
    rows = table(_record()).splitlines()
    assert len(rows) == 2 + 4
    assert rows[2] == (
        "| no challenger | saturation (closed loop) | 400 | 10.0 | 20.0 | 30.0 | 0 | 0.0% "
        "| – | – | – |"
    )
    assert rows[3].startswith("| no challenger | open loop 200 req/s (50%) | 200 | 4.0 |")
    assert rows[3].endswith("| 0 | 1.2% | – | – | – |")
    # dropped reasons with zero rows are left out; scored over answered
    assert rows[4] == (
        "| challenger in shadow | saturation (closed loop) | 380 | 11.0 | 22.0 | 33.0 | 0 "
        "| 0.0% | 900 | full 100 | 90.0% |"
    )
    # no answer at all: no latency and no share rather than NaN or a division by zero
    assert rows[5] == (
        "| challenger in shadow | open loop 200 req/s (50%) | 0 | – | – | – | 3,000 "
        "| 50.0% | 0 | 0 | – |"
    )


def test_the_section_says_how_busy_the_machine_was() -> None:
    lines = section(_record())
    assert lines[0] == TITLE
    assert "load average 1.5 before, 2.2 after" in lines[2]
    assert "15 s closed loop on 16 connections" in lines[4]
    assert "50% of the no-challenger saturation" in lines[4]


def test_the_section_is_replaced_in_place_and_the_others_kept(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n## First\n\nold body\n")
    update_benchmarks(_record(), page)
    once = page.read_text()
    assert once.startswith("# Benchmarks\n\n## First\n\nold body\n\n" + TITLE)
    replace_section(page, "## First", ["## First", "", "new body", ""])
    update_benchmarks(_record(), page)
    text = page.read_text()
    assert text.count(TITLE) == 1 and "new body" in text and "old body" not in text
    assert text.index("## First") < text.index(TITLE)


def test_the_rules_section_carries_the_cost_table() -> None:
    row = {"case": "single transaction (scalar)", "rules": 50, "rows": 1, "calls": 12_345,
           "mean_us": 20.0, "p50_us": 15.0, "p99_us": 60.0, "mean_us_per_tx": 20.0,
           "matched_share": 0.1}  # fmt: skip
    record = {"machine": MACHINE, "load_average": LOAD, "command": "python -m x",
              "settings": {"rules": 50, "batch": 1000, "seconds": 3.0}, "rows": [row]}  # fmt: skip
    lines = rules_section(record)
    assert lines[0] == RULES_TITLE
    assert (
        "| single transaction (scalar) | 50 | 12,345 | 20.0 | 15.0 | 60.0 | 20.00 | 10.0% |"
        in (lines[6])
    )
