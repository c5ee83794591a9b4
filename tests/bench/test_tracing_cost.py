"""The tracing-cost section of BENCHMARKS.md from its record: the best of the rounds."""

from __future__ import annotations

from benchmarks.tracing_cost import section

FIGURES = {"requests_per_s": 100.0, "p50_ms": 5.0, "p99_ms": 20.0}


def test_the_section_compares_every_variant_with_no_instrumentation() -> None:
    record = {
        "requests": 2000,
        "rounds": 2,
        "machine": {"cpus": 2, "python": "3.11", "load_average": [1.0, 1.0, 1.0]},
        "runs": {
            "no instrumentation": [{**FIGURES, "cpu_ms_per_request": 2.0}],
            "sampling 0": [
                {**FIGURES, "cpu_ms_per_request": 2.9, "p99_ms": 10.0},
                {**FIGURES, "cpu_ms_per_request": 2.2, "requests_per_s": 90.0},
            ],
            "sampling 100 %": [{**FIGURES, "cpu_ms_per_request": 3.0}],
        },
    }
    lines = section(record)
    assert lines[0] == "## Tracing cost (issue 24)"
    rows = [line for line in lines if line.startswith("| sampling") or line.startswith("| no")]
    assert rows == [
        "| no instrumentation | 100 | 5.00 | 20.00 | 2.000 | +0% |",
        "| sampling 0 | 100 | 5.00 | 10.00 | 2.200 | +10% |",
        "| sampling 100 % | 100 | 5.00 | 20.00 | 3.000 | +50% |",
    ]
