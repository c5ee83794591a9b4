"""The last few minutes of the service, for the dashboard's Live page.

Prometheus counters (``/metrics``) count since start-up; an operator watching the service
wants the last minutes. :class:`LiveWindow` keeps a ring of fixed time buckets
(``bucket_seconds`` wide, ``window_seconds`` in all). Each bucket holds decision counts, a
score histogram, degraded and fallback counts and, per scoring route, a latency histogram
with log-spaced bins 5 % wide. Memory is constant whatever the traffic, an observation is
a few list and dict updates, and percentiles over the window are read from the merged
histograms (each within 5 % of the exact value, reported at the bin's upper edge). The
last ``recent`` transactions are kept for the decisions table; their ids are masked only
when read, so the hot path never hashes.

Everything here is called on the event loop (routes and the middleware), so no lock.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.logging import pseudonymise
from app.services.predictor import Prediction

SCORE_EDGES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
LATENCY_MIN_S = 1e-4
LATENCY_RATIO = 1.05
LATENCY_BINS = math.ceil(math.log(100.0 / LATENCY_MIN_S) / math.log(LATENCY_RATIO)) + 1
SCORING_ROUTES = ("/v1/predict", "/v1/predict/batch")
DECISIONS = ("approve", "review", "step_up", "decline")


def latency_bin(seconds: float) -> int:
    """The histogram bin of a latency: bin ``i`` ends at ``LATENCY_MIN_S * RATIO**i``."""
    if seconds <= LATENCY_MIN_S:
        return 0
    return min(LATENCY_BINS - 1, math.ceil(math.log(seconds / LATENCY_MIN_S, LATENCY_RATIO)))


def bin_upper_ms(index: int) -> float:
    return LATENCY_MIN_S * LATENCY_RATIO**index * 1000


def mask_id(value: str) -> str:
    """An identifier with all but its last four characters hidden."""
    return "••••" + value[-4:] if len(value) > 4 else "••••"


@dataclass(frozen=True)
class RecentDecision:
    """One answered transaction, as recorded (ids in clear, masked when read)."""

    scored_at: float
    transaction_id: str
    customer_id: str
    amount: float
    prediction: Prediction
    model_version: str


@dataclass
class _Bucket:
    index: int = -1
    transactions: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    degraded: int = 0
    degraded_reasons: dict[str, int] = field(default_factory=dict)
    scores: list[int] = field(default_factory=lambda: [0] * len(SCORE_EDGES))
    latency: dict[str, list[int]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


class ScoredTransaction(Protocol):
    """What the window needs of a scored transaction (``TransactionIn`` has it)."""

    transaction_id: str
    customer_id: str
    amount: float


class LiveWindow:
    """Rolling counts, score histogram and latency percentiles (see the module docstring)."""

    def __init__(
        self,
        window_seconds: int = 900,
        bucket_seconds: int = 10,
        recent: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_seconds % bucket_seconds:
            raise ValueError("window_seconds must be a multiple of bucket_seconds")
        self.window_seconds = window_seconds
        self.bucket_seconds = bucket_seconds
        self._clock = clock
        self._ring = [_Bucket() for _ in range(window_seconds // bucket_seconds)]
        self._recent: deque[RecentDecision] = deque(maxlen=recent)

    def _bucket(self, now: float) -> _Bucket:
        index = int(now // self.bucket_seconds)
        slot = index % len(self._ring)
        bucket = self._ring[slot]
        if bucket.index != index:  # the slot's interval has passed: start it afresh
            bucket = self._ring[slot] = _Bucket(index)
        return bucket

    def record(
        self,
        transactions: Sequence[ScoredTransaction],
        predictions: Sequence[Prediction],
        version: str,
    ) -> None:
        """Count answered transactions and keep the newest for the decisions table."""
        now = self._clock()
        bucket = self._bucket(now)
        decisions, sources, reasons = bucket.decisions, bucket.sources, bucket.degraded_reasons
        last = len(SCORE_EDGES) - 1
        for p in predictions:
            decisions[p.decision] = decisions.get(p.decision, 0) + 1
            sources[p.decision_source] = sources.get(p.decision_source, 0) + 1
            bucket.scores[min(bisect.bisect_left(SCORE_EDGES, p.fraud_probability), last)] += 1
            if p.degraded:
                bucket.degraded += 1
                for flag in p.degraded:
                    reasons[flag] = reasons.get(flag, 0) + 1
        bucket.transactions += len(predictions)
        keep = self._recent.maxlen or 0
        if keep:  # only the newest can stay in the table
            self._recent.extend(
                RecentDecision(now, t.transaction_id, t.customer_id, t.amount, p, version)
                for t, p in zip(transactions[-keep:], predictions[-keep:], strict=True)
            )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count a request to a scoring route and its server-side latency."""
        if route not in SCORING_ROUTES:
            return
        bucket = self._bucket(self._clock())
        key = f"{status // 100}xx"
        bucket.statuses[key] = bucket.statuses.get(key, 0) + 1
        if status < 400:
            hist = bucket.latency.get(route)
            if hist is None:
                hist = bucket.latency[route] = [0] * LATENCY_BINS
            hist[latency_bin(seconds)] += 1

    def _live_buckets(self, now: float) -> list[_Bucket]:
        newest = int(now // self.bucket_seconds)
        oldest = newest - len(self._ring) + 1
        return [b for b in self._ring if oldest <= b.index <= newest]

    def snapshot(self, hash_key: bytes) -> dict[str, Any]:
        """The window as plain data; customer ids pseudonymised with ``hash_key`` (as in
        the logs), transaction ids masked."""
        now = self._clock()
        buckets = self._live_buckets(now)
        total = sum(b.transactions for b in buckets)
        decisions = {d: sum(b.decisions.get(d, 0) for b in buckets) for d in DECISIONS}
        alerts = total - decisions["approve"]
        degraded = sum(b.degraded for b in buckets)
        return {
            "generated_at": now,
            "window_seconds": self.window_seconds,
            "bucket_seconds": self.bucket_seconds,
            "transactions": total,
            "alerts": alerts,
            "alert_rate": alerts / total if total else None,
            "decisions": decisions,
            "decision_sources": _sum_dicts(b.sources for b in buckets),
            "degraded": degraded,
            "degraded_rate": degraded / total if total else None,
            "degraded_reasons": _sum_dicts(b.degraded_reasons for b in buckets),
            "score_histogram": _score_histogram(buckets),
            "latency_ms": {route: _percentiles(buckets, route) for route in SCORING_ROUTES},
            "responses": _sum_dicts(b.statuses for b in buckets),
            "series": self._series(buckets, now),
            "recent": [_recent_row(r, hash_key) for r in reversed(self._recent)],
        }

    def _series(self, buckets: list[_Bucket], now: float) -> list[dict[str, Any]]:
        by_index = {b.index: b for b in buckets}
        newest = int(now // self.bucket_seconds)
        series = []
        for index in range(newest - len(self._ring) + 1, newest + 1):
            b = by_index.get(index)
            n = b.transactions if b else 0
            series.append(
                {
                    "start": index * self.bucket_seconds,
                    "transactions": n,
                    "alerts": n - b.decisions.get("approve", 0) if b else 0,
                    "degraded": b.degraded if b else 0,
                }
            )
        return series


def _sum_dicts(dicts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for key, value in d.items():
            out[key] = out.get(key, 0) + value
    return dict(sorted(out.items()))


def _score_histogram(buckets: list[_Bucket]) -> list[dict[str, float]]:
    counts = [sum(b.scores[i] for b in buckets) for i in range(len(SCORE_EDGES))]
    lows = (0.0, *SCORE_EDGES[:-1])
    return [
        {"low": low, "high": high, "count": n}
        for low, high, n in zip(lows, SCORE_EDGES, counts, strict=True)
    ]


def _percentiles(buckets: list[_Bucket], route: str) -> dict[str, float | int | None]:
    merged = [0] * LATENCY_BINS
    for b in buckets:
        hist = b.latency.get(route)
        if hist is not None:
            merged = [m + h for m, h in zip(merged, hist, strict=True)]
    n = sum(merged)
    out: dict[str, float | int | None] = {"requests": n}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        out[name] = _quantile(merged, n, q)
    return out


def _quantile(hist: list[int], n: int, q: float) -> float | None:
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return round(bin_upper_ms(index), 3)
    return round(bin_upper_ms(len(hist) - 1), 3)


def _recent_row(r: RecentDecision, hash_key: bytes) -> dict[str, Any]:
    p = r.prediction
    return {
        "scored_at": r.scored_at,
        "transaction": mask_id(r.transaction_id),
        "customer": pseudonymise(r.customer_id, hash_key),
        "amount": r.amount,
        "fraud_probability": p.fraud_probability,
        "risk_level": p.risk_level,
        "decision": p.decision,
        "decision_source": p.decision_source,
        "degraded": p.degraded,
        "reasons": [reason.code for reason in p.reasons],
        "model_version": r.model_version,
    }
