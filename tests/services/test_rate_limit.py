"""RateLimiter: token buckets per key, refilled by the clock."""

from __future__ import annotations

import pytest

from app.services.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=4, clock=clock)
    assert [limiter.take("a") for _ in range(4)] == [0.0] * 4
    assert limiter.take("a") == pytest.approx(0.5)  # one token takes 1/rate seconds
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 60  # refills to the burst, not beyond
    assert [limiter.take("a") == 0.0 for _ in range(5)] == [True] * 4 + [False]


def test_keys_do_not_share_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_the_default_burst_is_one_second_of_rate_and_zero_disables() -> None:
    limiter = RateLimiter(rate=3.0, clock=Clock())
    assert [limiter.take("a") == 0.0 for _ in range(4)] == [True, True, True, False]
    off = RateLimiter(rate=0)
    assert not off.enabled and all(off.take("a") == 0.0 for _ in range(10_000))
