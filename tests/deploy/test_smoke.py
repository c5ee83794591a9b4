"""tools/smoke.py, the post-deployment check: it passes on a healthy service and fails on
every kind of degraded answer (before, CI's and deploy.yml's checks accepted them)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.processes import free_port, serve
from tools.smoke import SmokeFailure, known_transaction, problems, smoke

FULL = {
    "fraud_probability": 0.12,
    "risk_level": "low",
    "decision": "approve",
    "model_version": "abc",
    "decision_source": "model",
    "clf_score": 0.2,
    "degraded": [],
}


def test_a_full_model_answer_has_no_problem() -> None:
    assert problems(FULL) == []
    assert problems(FULL | {"decision_source": "rule"}) == []  # the model scored, a rule decided


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"degraded": ["customer_features:stale"]}, "degraded"),
        ({"degraded": ["feature_store:error"]}, "degraded"),
        ({"decision_source": "rules_fallback"}, "decision_source"),
        ({"decision_source": "rule", "clf_score": None}, "decision_source"),  # no model
        ({"risk_level": None}, "no risk_level"),
    ],
)
def test_every_degraded_answer_is_a_problem(change: dict[str, Any], expected: str) -> None:
    found = problems(FULL | change)
    assert len(found) == 1 and expected in found[0]


def test_the_transaction_is_the_load_records_known_customer_before_its_end() -> None:
    status = {
        "record": {
            "end": "2025-04-16T00:00:01+00:00",
            "views": {
                "customer_features": {"entities": 3, "canary": "C1"},
                "terminal_features": {"entities": 2, "canary": "T9"},
            },
        }
    }
    body = known_transaction(status)
    assert (body["customer_id"], body["terminal_id"]) == ("C1", "T9")
    assert body["timestamp"] == "2025-04-15T23:00:01+00:00"
    with pytest.raises(SmokeFailure, match="no load record"):
        known_transaction({"record": None})


@pytest.mark.slow
def test_it_passes_on_the_real_service_and_fails_without_its_online_data(
    tiny_bundle: Path, feast_repo: Path, tmp_path: Path
) -> None:
    port = free_port()
    server = serve(port, tiny_bundle, feast_repo, tmp_path / "ok", tmp_path / "ok.log")
    try:
        answer = smoke(f"http://127.0.0.1:{port}", None, ready_timeout=30)
        assert answer["degraded"] == [] and answer["decision_source"] == "model"
    finally:
        server.stop()

    # The same service on a copy of the repository whose online store lost its data.
    empty = tmp_path / "empty_repo"
    shutil.copytree(feast_repo, empty)
    for database in (empty / "data").glob("online_store.db*"):
        database.unlink()
    port = free_port()
    server = serve(port, tiny_bundle, empty, tmp_path / "empty", tmp_path / "empty.log", "/healthz")
    try:
        with pytest.raises(SmokeFailure):
            smoke(f"http://127.0.0.1:{port}", None, ready_timeout=15)
    finally:
        server.stop()


def scripted(answers: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """A stand-in for ``tools.smoke.call``: ready, a load record, then ``answers``."""
    record = {
        "record": {
            "end": "2025-04-16T00:00:01+00:00",
            "views": {"customer_features": {"canary": "C1"}, "terminal_features": {"canary": "T9"}},
        }
    }
    calls: list[str] = []

    def call(url: str, *_: Any, **__: Any) -> tuple[int, Any]:
        calls.append(url.rsplit("/", 1)[-1])
        if url.endswith("/readyz"):
            return 200, {"status": "ready"}
        if url.endswith("/status"):
            return 200, record
        return 200, answers.pop(0)

    return call, calls


def test_a_budget_miss_alone_is_scored_again(monkeypatch: pytest.MonkeyPatch) -> None:
    call, calls = scripted([FULL | {"degraded": ["feature_store:timeout"]}, FULL])
    monkeypatch.setattr("tools.smoke.call", call)
    assert smoke("http://x", None, ready_timeout=1)["degraded"] == []
    assert calls.count("predict") == 2


@pytest.mark.parametrize(
    "degraded",
    [["customer_features:stale"], ["feature_store:error"], ["feature_store:timeout", "x:stale"]],
)
def test_any_other_degradation_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, degraded: list[str]
) -> None:
    call, calls = scripted([FULL | {"degraded": degraded}, FULL])
    monkeypatch.setattr("tools.smoke.call", call)
    with pytest.raises(SmokeFailure, match="degraded"):
        smoke("http://x", None, ready_timeout=1)
    assert calls.count("predict") == 1


def test_a_store_that_keeps_missing_its_budget_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    call, calls = scripted([FULL | {"degraded": ["feature_store:timeout"]}] * 3)
    monkeypatch.setattr("tools.smoke.call", call)
    with pytest.raises(SmokeFailure, match="timeout"):
        smoke("http://x", None, ready_timeout=1)
    assert calls.count("predict") == 3
