"""The readiness check's hysteresis and time limit, with a stand-in store (no Feast)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from app.services.feature_health import Check, CheckStatus, FeatureStoreHealth
from app.services.features import FeatureStoreError
from feature_repo.online_status import LoadRecord

RECORD = LoadRecord("svc", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), {})


class FakeFeatures:
    service_name = "svc"
    store = None

    def __init__(self, store_type: str = "redis") -> None:
        self.store_type = store_type

    def twin(self) -> FakeFeatures:
        return self

    def close(self) -> None:
        pass


def _health(consecutive: int = 3, timeout_s: float = 1.0) -> FeatureStoreHealth:
    return FeatureStoreHealth(FakeFeatures(), 0, timeout_s, consecutive)  # type: ignore[arg-type]


def _check(status: CheckStatus) -> Check:
    return Check(status, RECORD if status != "unreachable" else None, status, time.time())


def _run(health: FeatureStoreHealth, results: str) -> list[tuple[str, bool]]:
    """Feed results (l = loaded, e = empty, u = unreachable); the status and readiness
    after each."""
    names: dict[str, CheckStatus] = {"l": "loaded", "e": "empty", "u": "unreachable"}
    states = [health.observe(_check(names[c])) for c in results]
    return [(s.status[0], s.ready) for s in states]


def test_a_loaded_store_needs_consecutive_failures_to_change() -> None:
    assert _run(_health(3), "lueueuuu") == [
        ("l", True),
        ("l", True),  # one unreachable
        ("l", True),
        ("l", True),
        ("l", True),
        ("l", True),  # alternating never flips
        ("l", True),
        ("u", True),  # three in a row: unreachable, still ready (loaded before)
    ]


def test_an_outage_then_an_empty_store_is_not_ready() -> None:
    states = _run(_health(2), "luueel")
    assert states == [
        ("l", True),
        ("l", True),
        ("u", True),
        ("u", True),
        ("e", False),  # the store came back without data
        ("e", False),  # one loaded result is not yet believed
    ]


def test_a_store_never_loaded_is_not_ready_until_its_first_loaded_check() -> None:
    assert _run(_health(3), "uel") == [("u", False), ("u", False), ("l", True)]


def test_the_record_is_kept_through_an_outage() -> None:
    health = _health(1)
    health.observe(_check("loaded"))
    state = health.observe(_check("unreachable"))
    assert state.status == "unreachable" and state.record == RECORD


def test_a_hung_check_is_bounded_and_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    calls = []

    def hang(self: FeatureStoreHealth) -> Check:
        calls.append(1)
        release.wait(5)
        return _check("loaded")

    monkeypatch.setattr(FeatureStoreHealth, "probe", hang)
    health = _health(1, timeout_s=0.05)
    started = time.perf_counter()
    first = health.check()
    assert time.perf_counter() - started < 0.5
    assert first.status == "unreachable" and "no answer within 0.05 s" in (first.last.detail or "")
    second = health.check()
    assert second.last.detail == "the previous check has not returned" and len(calls) == 1
    release.set()
    time.sleep(0.05)
    assert health.check().status == "loaded" and len(calls) == 2
    health.close()


def test_only_stores_that_hold_a_record_can_be_checked() -> None:
    with pytest.raises(FeatureStoreError, match="'dynamodb'"):
        FeatureStoreHealth(FakeFeatures("dynamodb"))  # type: ignore[arg-type]


def test_checks_run_periodically_off_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(
        FeatureStoreHealth, "probe", lambda self: seen.append(1) or _check("loaded")
    )
    health = FeatureStoreHealth(FakeFeatures(), 0.02, 1.0, 1)  # type: ignore[arg-type]
    health.start()
    time.sleep(0.2)
    health.close()
    assert len(seen) >= 3
