"""The precedence of allow / block / model / escalate, missing values and list merging."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraud_rules import SCALAR_MAX_ROWS, RuleOutcome
from tests.rules.helpers import compile_rules, inputs

RULES = """
  - {id: allow_vip, stage: allow, when: {field: request.customer_id, in_list: vip},
     action: {decision: approve, reason: ALLOW_LISTED}}
  - {id: block_terminal, stage: block, when: {field: request.terminal_id, in_list: bad},
     action: {decision: step_up, reason: BLOCKED_TERMINAL}}
  - {id: block_big, stage: block, when: {field: request.amount, op: ">=", value: 5000},
     action: {decision: decline, reason: TOO_BIG, risk_level: CRITICAL}}
  - {id: esc_review, stage: escalate, when: {field: request.amount, op: ">", value: 100},
     action: {decision: review, reason: OVER_100, risk_level: MEDIUM}}
  - {id: esc_level, stage: escalate, when: {field: feature.vel_tx_count_1h, op: ">=", value: 5},
     action: {reason: FAST_CARD, risk_level: HIGH}}
  - {id: disabled_rule, stage: block, enabled: false,
     when: {field: request.amount, op: ">", value: 0}, action: {decision: decline, reason: NEVER}}
"""
LISTS = "{vip: [C1], bad: [T9]}"
# customer, terminal, amount, velocity, model decision, model level
ROWS = [
    ("C1", "T9", 9000.0, 9.0, "decline", "CRITICAL"),  # 0 allow beats everything
    ("C2", "T9", 10.0, 0.0, "decline", "CRITICAL"),  # 1 block forces down
    ("C2", "T9", 10.0, 0.0, "approve", "LOW"),  # 2 block forces up
    ("C2", "T9", 6000.0, 0.0, "approve", "LOW"),  # 3 most severe block wins
    ("C2", "T1", 50.0, 0.0, "review", "MEDIUM"),  # 4 nothing matches
    ("C2", "T1", 150.0, 0.0, "step_up", "HIGH"),  # 5 escalation never lowers
    ("C2", "T1", 150.0, 0.0, "approve", "LOW"),  # 6 escalation raises
    ("C2", "T1", 50.0, 7.0, "approve", "LOW"),  # 7 level only: decision stays the model's
    ("C2", "T9", 150.0, 0.0, "approve", "LOW"),  # 8 block then escalate on top
]
BLOCKED = ("BLOCKED_TERMINAL", "block_terminal")
EXPECTED = [
    RuleOutcome(
        "approve",
        "LOW",
        "rule",
        ("allow_vip", "block_terminal", "block_big", "esc_review", "esc_level"),
        (("ALLOW_LISTED", "allow_vip"),),
    ),
    RuleOutcome("step_up", "CRITICAL", "rule", ("block_terminal",), (BLOCKED,)),
    RuleOutcome("step_up", "LOW", "rule", ("block_terminal",), (BLOCKED,)),
    RuleOutcome(
        "decline",
        "CRITICAL",
        "rule",
        ("block_terminal", "block_big", "esc_review"),
        (BLOCKED, ("TOO_BIG", "block_big"), ("OVER_100", "esc_review")),
    ),
    None,
    RuleOutcome("step_up", "HIGH", "model", ("esc_review",), (("OVER_100", "esc_review"),)),
    RuleOutcome("review", "MEDIUM", "rule", ("esc_review",), (("OVER_100", "esc_review"),)),
    RuleOutcome("approve", "HIGH", "model", ("esc_level",), (("FAST_CARD", "esc_level"),)),
    RuleOutcome(
        "step_up",
        "MEDIUM",
        "rule",
        ("block_terminal", "esc_review"),
        (BLOCKED, ("OVER_100", "esc_review")),
    ),
]  # fmt: skip


def _inputs(rows: list[tuple[str, str, float, float, str, str]]):  # type: ignore[no-untyped-def]
    return inputs(
        numeric={
            "request.amount": [r[2] for r in rows],
            "feature.vel_tx_count_1h": [r[3] for r in rows],
        },
        text={
            "request.customer_id": [r[0] for r in rows],
            "request.terminal_id": [r[1] for r in rows],
        },
    )


@pytest.mark.parametrize("copies", [1, 4])  # 9 rows: scalar per row; 36 rows: vectorised
def test_precedence(copies: int) -> None:
    rule_set = compile_rules(RULES, LISTS)
    rows = ROWS * copies
    if copies == 1:  # one row at a time, the single-transaction path
        got = [rule_set.decide(_inputs([row]), [row[4]], [row[5]], "model")[0] for row in ROWS]
    else:
        assert len(rows) > SCALAR_MAX_ROWS
        got = rule_set.decide(_inputs(rows), [r[4] for r in rows], [r[5] for r in rows], "model")
    assert got == EXPECTED * copies


def test_model_source_is_kept_when_no_rule_changes_the_decision() -> None:
    rule_set = compile_rules(RULES, LISTS)
    (outcome,) = rule_set.decide(_inputs([ROWS[5]]), ["step_up"], ["HIGH"], "rules_fallback")
    assert outcome is not None and outcome.decision_source == "rules_fallback"


def test_allow_rule_risk_level_and_disabled_rules() -> None:
    rule_set = compile_rules(
        "[{id: allow_a, stage: allow, when: {field: request.amount, op: '<', value: 10},"
        " action: {decision: approve, reason: SMALL, risk_level: MEDIUM}}]"
    )
    data = inputs(numeric={"request.amount": [5.0, 50.0]})
    assert rule_set.decide(data, ["decline"] * 2, ["HIGH"] * 2, "model") == [
        RuleOutcome("approve", "MEDIUM", "rule", ("allow_a",), (("SMALL", "allow_a"),)),
        None,
    ]
    full = compile_rules(RULES, LISTS)
    assert not full.matches(_inputs(ROWS))[:, 5].any()  # `disabled_rule` matches every amount > 0


MISSING = """
  - {id: lt, stage: escalate, when: {field: request.amount, op: "<", value: 10},
     action: {reason: LT}}
  - {id: ne, stage: escalate, when: {field: request.amount, op: "!=", value: 10},
     action: {reason: NE}}
  - {id: not_eq, stage: escalate, when: {not: {field: request.amount, op: "==", value: 10}},
     action: {reason: NOT_EQ}}
  - {id: num_in, stage: escalate, when: {field: request.amount, in: [10, 20]}, action: {reason: IN}}
  - {id: txt_ne, stage: escalate, when: {field: request.channel, op: "!=", value: online},
     action: {reason: TXT_NE}}
  - {id: txt_in, stage: escalate, when: {field: request.channel, in: [online, ""]},
     action: {reason: TXT_IN}}
  - {id: not_txt, stage: escalate, when: {not: {field: request.channel, in_list: chans}},
     action: {reason: NOT_TXT}}
  - {id: absent, stage: escalate, when: {field: model.ae_score, op: "!=", value: 1},
     action: {reason: ABSENT}}
"""


@pytest.mark.parametrize("vectorised", [False, True])
def test_missing_values_make_every_test_false(vectorised: bool) -> None:
    rule_set = compile_rules(MISSING, "{chans: [online]}")
    data = inputs(
        numeric={"request.amount": [math.nan, 10.0, 5.0]},
        text={"request.channel": [None, "online", "in_person"]},
    )
    got = rule_set.matches(data, vectorised=vectorised).astype(int).tolist()
    #          lt ne not_eq num_in txt_ne txt_in not_txt absent(field not given: missing)
    assert got == [
        [0, 0, 1, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 1, 0, 0],
        [1, 1, 1, 0, 1, 0, 1, 0],
    ]


def test_with_lists_merges_and_labels() -> None:
    rule_set = compile_rules(
        "[{id: blk, stage: block, when: {field: request.terminal_id, in_list: bad},"
        " action: {decision: decline, reason: BAD}},"
        " {id: codes, stage: escalate, when: {field: request.amount, in_list: amounts},"
        " action: {reason: AMOUNT}}]",
        "{bad: [T1], amounts: [13]}",
        version="2026-12-06.2",
    )
    data = inputs(
        numeric={"request.amount": [13.0, 99.0, 1.0]},
        text={"request.terminal_id": ["T1", "T2", "T3"]},
    )
    assert rule_set.label == "2026-12-06.2" and rule_set.lists_version is None
    merged = rule_set.with_lists({"bad": ["T2"], "amounts": ["99", "junk"], "unused": ["x"]}, "17")
    assert merged.label == "2026-12-06.2+lists.17"
    assert merged.lists == {
        "bad": frozenset({"T1", "T2"}),
        "amounts": frozenset({13.0, "99", "junk"}),
    }
    for vectorised in (False, True):
        assert rule_set.matches(data, vectorised=vectorised).astype(int).tolist() == [
            [1, 1], [0, 0], [0, 0]
        ]  # fmt: skip
        assert merged.matches(data, vectorised=vectorised).astype(int).tolist() == [
            [1, 1], [1, 1], [0, 0]
        ]  # fmt: skip
    assert rule_set.lists["bad"] == frozenset({"T1"})  # the original is unchanged


def test_an_empty_batch_and_a_batch_nothing_matches() -> None:
    rule_set = compile_rules(RULES, LISTS)
    empty = inputs(numeric={"request.amount": []})
    assert rule_set.matches(empty).shape == (0, 6)
    assert rule_set.decide(empty, [], [], "model") == []
    quiet = inputs(numeric={"request.amount": np.full(20, 1.0)})
    assert rule_set.decide(quiet, ["approve"] * 20, ["LOW"] * 20, "model") == [None] * 20
