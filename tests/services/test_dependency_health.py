"""WriteHealth: a log's readiness component follows its write outcomes with hysteresis."""

from __future__ import annotations

from app.services.dependency_health import WriteHealth


def test_consecutive_outcomes_are_needed_to_change_the_state() -> None:
    health = WriteHealth("audit_log", consecutive=3)
    assert health.writable and health.detail is None
    for outcome in (False, False, True, False, False):  # never three failures in a row
        health.observe(outcome, None if outcome else "disk full")
    assert health.writable
    health.observe(False, "disk full")
    assert not health.writable and health.detail == "disk full"
    for outcome in (True, True, False, True, True):
        health.observe(outcome, None if outcome else "disk full")
    assert not health.writable
    health.observe(True)
    assert health.writable and health.detail is None


def test_one_failure_is_enough_with_consecutive_one() -> None:
    health = WriteHealth("label_log", consecutive=1)
    health.observe(False, "read-only file system")
    assert not health.writable
