"""The Live page's rolling window: counts, expiry, histograms, percentiles, masking."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from app.core.logging import pseudonymise
from app.services.live import LATENCY_RATIO, LiveWindow, latency_bin, mask_id
from app.services.predictor import Prediction
from fraud_model.scorer import Reason

KEY = b"test-key"


@dataclass
class Tx:
    transaction_id: str
    customer_id: str
    amount: float


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def prediction(
    p: float, decision: str = "approve", degraded: list[str] | None = None, source: str = "model"
) -> Prediction:
    level = {"approve": "LOW", "review": "MEDIUM", "step_up": "HIGH", "decline": "CRITICAL"}
    reasons = [Reason("LOG_AMOUNT", "log_amount", "classifier", 0.5, 4.0)]
    return Prediction(p, level[decision], decision, 0.5, p, reasons, source, degraded or [])  # type: ignore[arg-type]


def record(window: LiveWindow, items: list[tuple[float, str]], **kw: object) -> None:
    txs = [Tx(f"TX{i:010d}", f"C{i % 3:06d}", 10.0 * (i + 1)) for i in range(len(items))]
    window.record(txs, [prediction(p, d, **kw) for p, d in items], "v1")  # type: ignore[arg-type]


def test_counts_rates_and_the_decision_mix() -> None:
    window = LiveWindow(clock=Clock())
    record(
        window,
        [(0.001, "approve")] * 96 + [(0.07, "review"), (0.2, "step_up")] + [(0.9, "decline")] * 2,
    )
    record(window, [(0.003, "approve")] * 2, degraded=["customer_features:new_entity"])
    snap = window.snapshot(KEY)
    assert snap["transactions"] == 102
    assert snap["alerts"] == 4 and snap["alert_rate"] == pytest.approx(4 / 102)
    assert snap["decisions"] == {"approve": 98, "review": 1, "step_up": 1, "decline": 2}
    assert snap["degraded"] == 2 and snap["degraded_reasons"] == {"customer_features:new_entity": 2}
    assert snap["decision_sources"] == {"model": 102}
    assert sum(b["count"] for b in snap["score_histogram"]) == 102
    # bins are (low, high]: 0.001 and 0.003 in the first, 0.9 in (0.85, 0.9]
    assert snap["score_histogram"][0]["count"] == 98
    assert [b for b in snap["score_histogram"] if b["high"] == 0.9][0]["count"] == 2
    assert sum(s["transactions"] for s in snap["series"]) == 102


def test_old_buckets_leave_the_window() -> None:
    clock = Clock()
    window = LiveWindow(window_seconds=60, bucket_seconds=10, clock=clock)
    record(window, [(0.9, "decline")] * 5)
    clock.now += 30
    record(window, [(0.001, "approve")] * 7)
    assert window.snapshot(KEY)["transactions"] == 12
    clock.now += 40  # the first group is now 70 s old
    snap = window.snapshot(KEY)
    assert snap["transactions"] == 7 and snap["decisions"]["decline"] == 0
    assert len(snap["series"]) == 6
    clock.now += 600  # everything expired; a slot reused later starts from zero
    assert window.snapshot(KEY)["transactions"] == 0
    record(window, [(0.5, "step_up")])
    assert window.snapshot(KEY)["transactions"] == 1


def test_latency_percentiles_are_within_the_bin_width() -> None:
    window = LiveWindow(clock=Clock())
    samples = [0.001 * (i + 1) for i in range(1000)]  # 1 ms .. 1000 ms
    for s in samples:
        window.observe_request("/v1/predict", 200, s)
    window.observe_request("/v1/predict", 503, 5.0)  # errors are counted, not timed
    window.observe_request("/healthz", 200, 0.5)  # not a scoring route
    lat = window.snapshot(KEY)["latency_ms"]["/v1/predict"]
    assert lat["requests"] == 1000
    for name, exact in (("p50", 500.0), ("p95", 950.0), ("p99", 990.0), ("max", 1000.0)):
        assert exact <= lat[name] <= exact * LATENCY_RATIO * 1.0001, name
    assert window.snapshot(KEY)["responses"] == {"2xx": 1000, "5xx": 1}
    assert window.snapshot(KEY)["latency_ms"]["/v1/predict/batch"]["p50"] is None


@pytest.mark.parametrize("seconds", [1e-5, 1e-4, 3.3e-3, 0.25, 99.0, 1e4])
def test_a_latency_falls_in_the_bin_that_ends_at_or_above_it(seconds: float) -> None:
    i = latency_bin(seconds)
    upper = 1e-4 * LATENCY_RATIO**i
    assert upper >= min(seconds, upper) and (i == 0 or 1e-4 * LATENCY_RATIO ** (i - 1) < seconds)
    assert math.isfinite(upper)


def test_recent_decisions_are_newest_first_bounded_and_masked() -> None:
    window = LiveWindow(recent=5, clock=Clock())
    record(window, [(0.001 * i, "approve") for i in range(1, 9)])
    recent = window.snapshot(KEY)["recent"]
    assert len(recent) == 5
    assert [r["transaction"] for r in recent] == [
        "••••0007",
        "••••0006",
        "••••0005",
        "••••0004",
        "••••0003",
    ]
    assert recent[0]["customer"] == pseudonymise("C000001", KEY)
    assert "C000001" not in str(recent) and "TX0000000007" not in str(recent)
    assert recent[0]["reasons"] == ["LOG_AMOUNT"] and recent[0]["amount"] == 80.0


def test_short_ids_are_masked_whole() -> None:
    assert mask_id("abc") == "••••" and mask_id("abcd") == "••••"
    assert mask_id("abcde") == "••••bcde"


def test_the_window_must_be_whole_buckets() -> None:
    with pytest.raises(ValueError, match="multiple"):
        LiveWindow(window_seconds=95, bucket_seconds=10)
