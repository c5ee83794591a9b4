"""The dashboard's fraud-operations routes through the real app: a session is required,
the dry-run reports what the /v1 dry-run does, and claims and outcomes are the
signed-in key's (the same queue, labels and metrics as /v1/review)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.services.api_keys import key_id
from tests.serving import as_request

pytestmark = pytest.mark.integration

KEY, OTHER = "analyst-key-one", "analyst-key-two"
REVIEW_AMOUNT = 4321.0
# A block rule forces its decision whatever the model says (an escalate rule only
# raises it), so a transaction of REVIEW_AMOUNT is always decided ``review``.
RULES = f"""
version: "test-ops.1"
lists:
  blocked_terminals: ["T-BLOCKED-1", "T-BLOCKED-2"]
rules:
  - id: block_terminals
    stage: block
    when: {{field: request.terminal_id, in_list: blocked_terminals}}
    action: {{decision: decline, reason: BLOCKED_TERMINAL}}
  - id: review_marked_amount
    description: "the amount the tests mark for review"
    stage: block
    when: {{field: request.amount, op: "==", value: {REVIEW_AMOUNT}}}
    action: {{decision: review, reason: MARKED_AMOUNT, risk_level: HIGH}}
"""
CANDIDATE_RULE = """
  - id: decline_large
    stage: block
    when: {field: request.amount, op: ">=", value: 1000}
    action: {decision: decline, reason: LARGE_AMOUNT}
"""


def rule_file(directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(RULES)
    return path


def transactions(recent: pd.DataFrame, n: int, review: int = 0) -> list[dict[str, Any]]:
    """``n`` requests timed in the last hour (the first ``review`` of REVIEW_AMOUNT, the
    rest under 1000)."""
    now = datetime.now(UTC)
    out = []
    for i, row in enumerate(recent.iloc[:n].itertuples()):
        body = as_request(row)
        body["transaction_id"] = f"ops-{i:03d}"
        body["timestamp"] = (now - timedelta(minutes=30 - i)).isoformat()
        body["amount"] = REVIEW_AMOUNT if i < review else round(10.0 + i, 2)
        out.append(body)
    return out


def wait_for_queue(client: TestClient, headers: dict[str, str], n: int) -> list[dict[str, Any]]:
    """The open queue once the shipper has written ``n`` entries to the record."""
    deadline = time.monotonic() + 15
    while True:
        items: list[dict[str, Any]] = client.get(
            "/dashboard/api/review/queue", headers=headers
        ).json()["items"]
        if len(items) >= n or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


@pytest.fixture
def ops(client_for: Any, tmp_path: Path, recent: pd.DataFrame) -> TestClient:
    client: TestClient = client_for(
        api_keys=f"{KEY},{OTHER}", rules_file=rule_file(tmp_path), record_ship_interval_ms=20
    )
    for body in transactions(recent, 6, review=2):
        response = client.post("/v1/predict", json=body, headers={"X-API-Key": KEY})
        assert response.status_code == 200, response.text
    return client


def _metric(text: str, name: str, label: str) -> float:
    lines = [ln for ln in text.splitlines() if ln.startswith(name + "{") and label in ln]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)


def test_the_operations_routes_need_a_session(ops: TestClient) -> None:
    for path in ("/dashboard/api/rules", "/dashboard/api/review/queue", "/dashboard/api/shadow"):
        response = ops.get(path)
        assert response.status_code == 401, path
    assert ops.post("/dashboard/api/review/ops-000/claim").status_code == 401
    bad = {"X-API-Key": "not-a-key"}
    assert ops.post("/dashboard/api/review/ops-000/claim", headers=bad).status_code == 401
    body = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}
    assert ops.post("/dashboard/api/rules/dry-run", json=body).status_code == 401


def test_rule_set_and_dry_run_match_the_v1_routes(ops: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    rules = ops.get("/dashboard/api/rules", headers=headers)
    assert rules.status_code == 200 and rules.headers["cache-control"] == "no-store"
    state = rules.json()
    assert state["version"] == "test-ops.1" and state["problem"] is None
    assert [r["id"] for r in state["rules"]] == ["block_terminals", "review_marked_amount"]
    assert state["lists"] == {"blocked_terminals": 2}
    assert state["source_text"] == RULES
    now = datetime.now(UTC)
    period = {"since": (now - timedelta(days=1)).isoformat(), "until": now.isoformat()}
    wait_for_queue(ops, headers, 2)  # the decisions are on record
    body = {"rules": RULES + CANDIDATE_RULE, **period}
    mine = ops.post("/dashboard/api/rules/dry-run", json=body, headers=headers)
    v1 = ops.post("/v1/rules/dry-run", json=body, headers=headers)
    assert mine.status_code == 200 == v1.status_code, mine.text
    out = mine.json()
    assert out == v1.json()
    report = out["report"]
    assert report["rows"] == 6 and report["labelled"] == 0
    # Of the matching block rules the most severe decision is forced: the two marked rows
    # go from review to decline; the others (under 1000) do not change.
    assert report["changed"] == 2 and report["transitions"] == {"review->decline": 2}
    per_rule = {r["id"]: r for r in report["rules"]}
    assert per_rule["review_marked_amount"]["matches"] == 2
    assert per_rule["decline_large"]["matches"] == 2
    assert per_rule["decline_large"]["decisions_changed"] == 2
    assert per_rule["block_terminals"]["matches"] == 0
    assert report["flagged"]["after"]["count"] >= 2 and report["declined"]["after"]["count"] >= 2
    assert out["rule_set"] == out["baseline"] == "test-ops.1+lists.0"
    broken = RULES.replace("request.amount", "request.amout")
    refused = ops.post(
        "/dashboard/api/rules/dry-run", json={**body, "rules": broken}, headers=headers
    )
    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]  # the API's 422: one field error per problem
    assert problem["loc"] == ["body", "rules"] and problem["type"] == "rule_set"
    assert "unknown field request.amout" in problem["msg"]
    assert "review_marked_amount" in problem["msg"]


def test_claim_and_outcome_are_the_signed_in_keys(ops: TestClient) -> None:
    one, two = {"X-API-Key": KEY}, {"X-API-Key": OTHER}
    items = wait_for_queue(ops, one, 2)
    assert [i["transaction_id"] for i in items] == ["ops-000", "ops-001"]
    first = items[0]
    assert first["amount"] == REVIEW_AMOUNT and first["decision"] == "review"
    assert first["rules"] == ["review_marked_amount"] and "MARKED_AMOUNT" in first["reasons"]
    # Sign in with a session cookie: the claim is the key id's.
    assert ops.post("/dashboard/api/session", json={"key": KEY}).status_code == 204
    claimed = ops.post("/dashboard/api/review/ops-000/claim")
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    ops.cookies.clear()
    taken = ops.post("/dashboard/api/review/ops-000/claim", headers=two)
    assert taken.status_code == 409 and "another analyst" in taken.json()["detail"]
    refused = ops.post(
        "/dashboard/api/review/ops-000/outcome", json={"outcome": "fraud"}, headers=two
    )
    assert refused.status_code == 409
    listed = ops.get("/dashboard/api/review/queue?status=claimed", headers=one).json()
    assert [i["claimed_by"] for i in listed["items"]] == [key_id(KEY)]
    assert listed["counts"]["open"] == 1 and listed["counts"]["claimed"] == 1
    done = ops.post(
        "/dashboard/api/review/ops-000/outcome",
        json={"outcome": "fraud", "note": "card reported stolen"},
        headers=one,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "transaction_id": "ops-000",
        "outcome": "fraud",
        "status": "resolved",
        "label": "recorded",
    }
    resolved = ops.get("/dashboard/api/review/queue?status=resolved", headers=one).json()
    (entry,) = resolved["items"]
    assert entry["outcome"] == "fraud" and entry["decided_by"] == key_id(KEY)
    assert entry["note"] == "card reported stolen" and resolved["counts"]["resolved"] == 1
    # Release and a second claim: the other key can then take the second entry.
    assert ops.post("/dashboard/api/review/ops-001/claim", headers=one).status_code == 200
    assert ops.post("/dashboard/api/review/ops-001/release", headers=two).status_code == 409
    assert ops.post("/dashboard/api/review/ops-001/release", headers=one).status_code == 200
    assert ops.post("/dashboard/api/review/ops-001/claim", headers=two).status_code == 200
    assert ops.post("/dashboard/api/review/nope/claim", headers=one).status_code == 404
    metrics = ops.get("/metrics").text
    assert _metric(metrics, "fraud_review_actions_total", 'action="claim"') == 3
    assert _metric(metrics, "fraud_review_outcomes_total", 'outcome="fraud"') == 1


def test_pages_show_the_rule_set_the_queue_and_the_shadow(ops: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    rules = ops.get("/dashboard/rules", headers=headers)
    assert rules.status_code == 200
    html = rules.text
    assert '<a href="/dashboard/rules" aria-current="page">' in html
    assert "<code>review_marked_amount</code>" in html and "MARKED_AMOUNT" in html
    assert "<code>blocked_terminals</code></th><td class=num>2</td>" in html
    assert 'id="dry-rules"' in html and "version: &quot;test-ops.1&quot;" in html
    since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT")
    assert f'id="dry-since" name="since" type="datetime-local" required value="{since}' in html
    review = ops.get("/dashboard/review", headers=headers).text
    assert (
        f'data-analyst="{key_id(KEY)}"' in review and 'src="/dashboard/static/review.js' in review
    )
    model = ops.get("/dashboard/model", headers=headers).text
    assert 'id="h-shadow"' in model and "not scoring" in model
    shadow = ops.get("/dashboard/api/shadow", headers=headers).json()
    assert shadow["challenger"]["loaded"] is False and shadow["recorded"] == []
