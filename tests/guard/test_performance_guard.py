"""Performance regression guards: CPU time per transaction against a recorded baseline.

Not a benchmark (``make bench`` proves the targets, on the demo workspace, over HTTP): a
tripwire that fails when a change makes the scoring paths much slower. Each guard measures
the CPU time of the whole process (every thread: the lookup thread, the audit writer, the
velocity pusher) per transaction, on the tests' tiny workspace, the steadiest figure on a
shared machine; it fails when the figure is over ``TOLERANCE`` times the baseline in
``benchmarks/guard_baseline.json``. ``GUARD_RECORD=1 pytest tests/guard`` records a new
baseline (on a quiet machine: ``make test`` runs these beside another test worker).

- single transactions through the whole app in process (``POST /v1/predict``: routing,
  validation, tracing, lookup, scoring, rules, reasons, the audit record, encoding);
- the vectorised batch path (``benchmarks.batch_path``: lookup, assembly, scoring with
  the rule set, reasons and encoding for batches), whose answers must also equal, bit for
  bit, the single path's for every one of the 1,000 transactions (each scored alone in
  time order, its card's earlier ones as pending velocity state).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from app.core.config import Settings
from app.main import create_app
from benchmarks import batch_path, tracing_cost
from benchmarks.transactions import request_body

pytestmark = [pytest.mark.guard, pytest.mark.slow]

BASELINE = Path(__file__).resolve().parents[2] / "benchmarks" / "guard_baseline.json"
TOLERANCE = 2.5  # generous: a 2.5x slower path is a regression, not noise
RECORD = os.environ.get("GUARD_RECORD") == "1"


@pytest.fixture(scope="module")
def bodies(tiny_stream: pd.DataFrame) -> list[dict[str, Any]]:
    """1,000 transactions of the tiny stream's end, ids made distinct."""
    rows = tiny_stream.sort_values("timestamp", kind="stable").tail(1000)
    return [
        request_body(row, transaction_id=f"GUARD{i:05d}")
        for i, row in enumerate(rows.itertuples(index=False))
    ]


def _check(name: str, measured: float) -> None:
    baseline: dict[str, float] = json.loads(BASELINE.read_text()) if BASELINE.is_file() else {}
    if RECORD:
        baseline[name] = round(measured, 2)
        BASELINE.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
        return
    assert name in baseline, f"no baseline for {name}: GUARD_RECORD=1 pytest tests/guard"
    limit = baseline[name] * TOLERANCE
    assert measured <= limit, (
        f"{name}: {measured:.1f} us of CPU per transaction, over {TOLERANCE}x the "
        f"baseline {baseline[name]:.1f} (benchmarks/guard_baseline.json)"
    )


def test_single_transactions_through_the_app(
    settings_for: Callable[..., Settings], bodies: list[dict[str, Any]]
) -> None:
    app = create_app(settings_for())
    encoded = [orjson.dumps(b) for b in bodies]
    run = asyncio.run(tracing_cost.run(app, encoded, warmup=200, profile=None))
    assert run["requests"] == len(bodies) - 200
    _check("single_cpu_us_per_tx", run["cpu_ms_per_request"] * 1000)


def test_the_batch_path_and_its_parity_with_the_single_path(
    settings_for: Callable[..., Settings], bodies: list[dict[str, Any]]
) -> None:
    figures = batch_path.measure(settings_for(), bodies, size=500, rounds=3)
    assert figures["parity"]["checked"] >= 100
    assert figures["parity"]["differing"] == 0
    _check("batch_cpu_us_per_tx", figures["cpu_us_per_tx"])
