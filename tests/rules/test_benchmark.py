"""benchmarks/rules_cost.py: its 50-rule set is valid and splits the rows; its table."""

from __future__ import annotations

from benchmarks.rules_cost import markdown, measure, rule_set


def test_the_benchmark_rule_set_has_every_stage() -> None:
    compiled = rule_set(50)
    assert len(compiled.rules) == 50
    assert {r.stage for r in compiled.rules} == {"allow", "block", "escalate"}


def test_measure_and_table() -> None:
    rows = measure(rules=10, batch=20, seconds=0.05)
    assert [(r["rows"], r["rules"]) for r in rows] == [(1, 10), (20, 10)]
    for row in rows:
        assert row["calls"] > 0 and row["p50_us"] <= row["p99_us"]
        assert row["mean_us_per_tx"] == row["mean_us"] / row["rows"]
        assert 0.0 < row["matched_share"] < 0.5
    table = markdown([{**rows[1], "mean_us": 2000.0, "p50_us": 1900.0, "p99_us": 4000.0,
                       "mean_us_per_tx": 2.0, "calls": 1234, "matched_share": 0.1}])  # fmt: skip
    assert table.splitlines()[2] == (
        "| batch of 20 (vectorised) | 10 | 1,234 | 2000.0 | 1900.0 | 4000.0 | 2.00 | 10.0% |"
    )
