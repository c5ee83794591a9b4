"""The analysts' rule set through the real app: precedence, lists edited in the system
of record, refused and invalid files, hot reload under load, and the dry-run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.serving import as_request

pytestmark = pytest.mark.integration

RULES = """\
version: "{version}"
description: "{padding}"
lists:
  blocked_terminals: []
  vip_terminals: ["T_FILE_ONLY"]
rules:
  - id: allow_vip
    stage: allow
    when: {{field: request.terminal_id, in_list: vip_terminals}}
    action: {{decision: approve, reason: ALLOW_LISTED}}
  - id: block_terminals
    stage: block
    when: {{field: request.terminal_id, in_list: blocked_terminals}}
    action: {{decision: decline, reason: BLOCKED_TERMINAL, risk_level: CRITICAL}}
  - id: escalate_amount
    stage: escalate
    when: {{field: request.amount, op: "==", value: 777.77}}
    action: {{decision: review, reason: ODD_AMOUNT, risk_level: MEDIUM}}
"""
SEVERITY = {"approve": 0, "review": 1, "step_up": 2, "decline": 3}


def write_rules(path: Path, version: str, padding: str = "") -> Path:
    """Write a rule file atomically, as a ConfigMap update swaps its mount."""
    return write_atomically(path, RULES.format(version=version, padding=padding))


def write_atomically(path: Path, text: str) -> Path:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def wait_for(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    """``check()``'s first truthy value, polled for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def rule_reasons(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["code"], r["feature"]) for r in answer["reasons"] if r["source"] == "rule"]


def test_precedence_lists_and_the_rule_set(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(rules_file=write_rules(tmp_path / "rules.yaml", "t.1"))
    body = as_request(recent.iloc[0])
    terminal = body["terminal_id"]

    def score(**change: Any) -> dict[str, Any]:
        response = client.post("/v1/predict", json={**body, **change})
        assert response.status_code == 200
        return dict(response.json())

    model = score()
    assert (model["rule_set_version"], model["rules_matched"]) == ("t.1+lists.0", [])
    assert model["decision_source"] == "model" and rule_reasons(model) == []

    put = client.put(f"/v1/rules/lists/blocked_terminals/{terminal}", json={"note": "skimmer"})
    assert (put.status_code, put.json()["status"]) == (201, "added")
    assert put.json()["rule_set_version"] == "t.1+lists.1"
    again = client.put(f"/v1/rules/lists/blocked_terminals/{terminal}")
    assert (again.status_code, again.json()["status"]) == (200, "present")
    blocked = score()
    assert (blocked["decision"], blocked["risk_level"], blocked["decision_source"]) == (
        "decline",
        "CRITICAL",
        "rule",
    )
    assert blocked["rule_set_version"] == "t.1+lists.1"
    assert blocked["rules_matched"] == ["block_terminals"]
    assert rule_reasons(blocked) == [("BLOCKED_TERMINAL", "block_terminals")]
    rule_reason = next(r for r in blocked["reasons"] if r["source"] == "rule")
    assert (rule_reason["contribution"], rule_reason["value"]) == (0.0, 0.0)
    # escalate only raises: a blocked decline stays a decline
    assert score(amount=777.77)["decision"] == "decline"

    assert client.put(f"/v1/rules/lists/vip_terminals/{terminal}").status_code == 201
    allowed = score()
    assert (allowed["decision"], allowed["risk_level"], allowed["decision_source"]) == (
        "approve",
        "LOW",
        "rule",
    )
    assert allowed["rules_matched"][0] == "allow_vip"
    assert ("ALLOW_LISTED", "allow_vip") in rule_reasons(allowed)
    assert allowed["rule_set_version"] == "t.1+lists.2"

    listing = client.get("/v1/rules").json()
    assert (listing["version"], listing["label"], listing["problem"]) == (
        "t.1",
        "t.1+lists.2",
        None,
    )
    assert [r["id"] for r in listing["rules"]] == [
        "allow_vip",
        "block_terminals",
        "escalate_amount",
    ]
    assert [r["stage"] for r in listing["rules"]] == ["allow", "block", "escalate"]
    assert listing["rules"][2]["fields"] == ["request.amount"]
    assert listing["lists"] == {"blocked_terminals": 1, "vip_terminals": 2}

    for name in ("vip_terminals", "blocked_terminals"):
        gone = client.delete(f"/v1/rules/lists/{name}/{terminal}")
        assert (gone.status_code, gone.json()["status"]) == (200, "removed")
    assert client.delete(f"/v1/rules/lists/vip_terminals/{terminal}").json()["status"] == "absent"
    back = score()
    assert (back["decision"], back["decision_source"], back["rules_matched"]) == (
        model["decision"],
        "model",
        [],
    )
    assert back["rule_set_version"] == "t.1+lists.4"
    escalated = score(amount=777.77)
    assert escalated["rules_matched"] == ["escalate_amount"]
    assert ("ODD_AMOUNT", "escalate_amount") in rule_reasons(escalated)
    assert SEVERITY[escalated["decision"]] >= SEVERITY["review"]
    assert escalated["risk_level"] in {"MEDIUM", "HIGH", "CRITICAL"}

    assert client.put(f"/v1/rules/lists/no_such_list/{terminal}").status_code == 404
    assert client.delete(f"/v1/rules/lists/no_such_list/{terminal}").status_code == 404


def test_a_bad_file_is_refused_and_the_old_set_stays(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    path = write_rules(tmp_path / "rules.yaml", "good.1")
    client = client_for(rules_file=path, rules_refresh_seconds=0.05)
    body = as_request(recent.iloc[1])
    assert client.post("/v1/predict", json=body).json()["rule_set_version"] == "good.1+lists.0"
    bad = RULES.format(version="bad.2", padding="").replace("request.amount", "request.colour")
    write_atomically(path, bad)
    state = wait_for(lambda: client.get("/v1/rules").json()["problem"])
    assert state and "escalate_amount" in state and "request.colour" in state
    assert client.get("/v1/rules").json()["version"] == "good.1"
    assert client.post("/v1/predict", json=body).json()["rule_set_version"] == "good.1+lists.0"
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    assert ready.json()["rules"]["status"] == "refused"
    assert "request.colour" in ready.json()["rules"]["detail"]
    assert 'fraud_rules_reloads_total{outcome="refused"} 1.0' in client.get("/metrics").text


def test_an_app_started_on_a_bad_file_is_not_ready(
    client_for: Callable[..., TestClient], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        RULES.format(version="bad.1", padding="").replace("stage: block", "stage: maybe")
    )
    ready = client_for(rules_file=path).get("/readyz")
    assert ready.status_code == 503
    assert (ready.json()["status"], ready.json()["rules"]["status"]) == ("not_ready", "invalid")
    assert "rules[1] (block_terminals).stage" in ready.json()["rules"]["detail"]


def test_hot_reload_under_load(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    path = write_rules(tmp_path / "rules.yaml", "load.0")
    client = client_for(rules_file=path, rules_refresh_seconds=0.02)
    bodies = [as_request(recent.iloc[i]) for i in range(20)]
    seen: list[list[str]] = [[], []]
    statuses: list[int] = []
    done = threading.Event()

    def hammer(k: int) -> None:
        i = 0
        while not done.is_set() or i < 100:
            response = client.post("/v1/predict", json=bodies[i % len(bodies)])
            statuses.append(response.status_code)
            if response.status_code == 200:
                seen[k].append(response.json()["rule_set_version"])
            i += 1
            if i >= 400:
                break

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for n in range(1, 5):
        time.sleep(0.25)
        write_rules(path, f"load.{n}", padding="x" * n)  # another size: a new stamp too
    time.sleep(0.25)
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert statuses and set(statuses) == {200}
    for versions in seen:
        order = [int(v.split("+")[0].split(".")[1]) for v in versions]
        assert order == sorted(order)  # never back to an older set
        assert len(set(order)) >= 2
    assert seen[0][-1] == seen[1][-1] == "load.4+lists.0"
    assert 'fraud_rules_reloads_total{outcome="loaded"} 5.0' in client.get("/metrics").text


def test_dry_run_over_a_recorded_period(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(
        rules_file=write_rules(tmp_path / "rules.yaml", "base.1"), record_ship_interval_ms=20
    )
    counts = recent.terminal_id.value_counts()
    terminal = str(counts.index[0])
    assert counts.iloc[0] >= 2
    rows = pd.concat(
        [
            recent[recent.terminal_id == terminal].head(3),
            recent[recent.terminal_id != terminal].head(9),
        ]
    )
    answers = client.post(
        "/v1/predict/batch", json={"transactions": [as_request(r) for _, r in rows.iterrows()]}
    ).json()["results"]
    assert len(answers) == len(rows) == len({a["transaction_id"] for a in answers})
    labels = {a["transaction_id"]: i % 3 == 0 for i, a in enumerate(answers[:8])}
    for tx, is_fraud in labels.items():
        sent = client.post("/v1/feedback", json={"transaction_id": tx, "is_fraud": is_fraud})
        assert sent.status_code == 200
    since = (rows.timestamp.min() - pd.Timedelta(seconds=1)).isoformat()
    until = (rows.timestamp.max() + pd.Timedelta(seconds=1)).isoformat()
    candidate = RULES.format(version="cand.1", padding="").replace(
        "blocked_terminals: []", f'blocked_terminals: ["{terminal}"]'
    )

    def report() -> dict[str, Any] | None:
        response = client.post(
            "/v1/rules/dry-run", json={"rules": candidate, "since": since, "until": until}
        )
        assert response.status_code == 200, response.text
        out: dict[str, Any] = response.json()
        ready = out["report"]["rows"] == len(rows) and out["report"]["labelled"] == len(labels)
        return out if ready else None

    out = wait_for(report)
    assert out, "the scored rows and their labels did not reach the record"
    assert (out["rule_set"], out["baseline"], out["truncated"]) == (
        "cand.1+lists.0",
        "base.1+lists.0",
        False,
    )
    result = out["report"]
    hits = [
        a
        for a in answers
        if a["transaction_id"] in set(rows[rows.terminal_id == terminal].transaction_id)
    ]
    frauds = sum(labels.values())
    labelled_hits = [a for a in hits if a["transaction_id"] in labels]
    fraud_hits = sum(labels[a["transaction_id"]] for a in labelled_hits)
    assert result["frauds"] == frauds
    stats = {r["id"]: r for r in result["rules"]}
    block = stats["block_terminals"]
    assert (block["matches"], block["labelled_matches"], block["fraud_matches"]) == (
        len(hits),
        len(labelled_hits),
        fraud_hits,
    )
    assert block["precision"] == pytest.approx(fraud_hits / len(labelled_hits))
    assert block["recall"] == pytest.approx(fraud_hits / frauds)
    changed = sum(a["decision"] != "decline" for a in hits)
    assert block["decisions_changed"] == result["changed"] == changed
    assert stats["allow_vip"]["matches"] == 0
    before = {d: sum(a["decision"] == d for a in answers) for d in SEVERITY}
    assert {d: result["decisions_before"].get(d, 0) for d in SEVERITY} == before
    assert result["decisions_after"].get("decline", 0) == before["decline"] + changed

    bad = client.post(
        "/v1/rules/dry-run",
        json={
            "rules": candidate.replace("request.amount", "feature.nope"),
            "since": since,
            "until": until,
        },
    )
    assert bad.status_code == 422 and "feature.nope" in bad.text and "escalate_amount" in bad.text
    backwards = client.post(
        "/v1/rules/dry-run", json={"rules": candidate, "since": until, "until": until}
    )
    assert backwards.status_code == 422
