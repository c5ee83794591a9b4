"""Per-key rate limits: a token bucket per API key id, in one process (one pod).

Each key may make ``rate`` requests per second with bursts up to ``burst``. The limit is
per pod: behind a load balancer with N pods a key gets up to N times the rate, which is
the point (a noisy caller cannot take one pod's whole capacity) without shared state.
Only keys that passed authentication get a bucket, so the table is bounded by the number
of configured keys (plus ``anonymous`` when no keys are configured).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets by key id; ``rate`` <= 0 disables limiting."""

    def __init__(
        self, rate: float, burst: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, updated)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0.0 if ``key`` may go now (one token is spent), else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, updated = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
