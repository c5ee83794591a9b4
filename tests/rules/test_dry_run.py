"""Dry-run figures on a hand-made period, every number worked out by hand below."""

from __future__ import annotations

import numpy as np

from fraud_rules.dry_run import AlertStats, dry_run
from tests.rules.helpers import compile_rules, inputs

BLOCK = (
    "{id: block_t, stage: block, when: {field: request.terminal_id, in_list: bad},"
    " action: {decision: decline, reason: BAD_TERMINAL}}"
)
ESCALATE = (
    "{id: esc_big, stage: escalate, when: {field: request.amount, op: '>=', value: 1000},"
    " action: {decision: review, reason: BIG}}"
)
# terminal, amount, model decision, label     -> candidate (block_t + esc_big) decides
PERIOD = [
    ("T9", 10.0, "approve", 1),  # 0 block: decline
    ("T9", 2000.0, "review", 0),  # 1 block: decline (the escalation does not raise it)
    ("T1", 2000.0, "approve", 1),  # 2 escalate: review
    ("T1", 2000.0, "step_up", -1),  # 3 escalate: stays step_up
    ("T1", 10.0, "approve", 0),  # 4 approve
    ("T1", 10.0, "decline", 1),  # 5 decline (the model's)
    ("T9", 5.0, "approve", -1),  # 6 block: decline
    ("T1", 10.0, "approve", 1),  # 7 approve
]
LEVEL = {"approve": "LOW", "review": "MEDIUM", "step_up": "HIGH", "decline": "CRITICAL"}


def _run(baseline_rules: str | None):  # type: ignore[no-untyped-def]
    candidate = compile_rules(f"[{BLOCK}, {ESCALATE}]", "{bad: [T9]}")
    baseline = compile_rules(baseline_rules) if baseline_rules else None
    data = inputs(
        numeric={"request.amount": [r[1] for r in PERIOD]},
        text={"request.terminal_id": [r[0] for r in PERIOD]},
    )
    decisions = [r[2] for r in PERIOD]
    labels = np.array([r[3] for r in PERIOD], dtype=np.int8)
    return dry_run(
        candidate, baseline, data, decisions, [LEVEL[d] for d in decisions], "model", labels
    )


def test_against_the_model_alone() -> None:
    report = _run(None)
    assert (report.rows, report.labelled, report.frauds) == (8, 6, 4)
    block, esc = report.rules
    # block_t hits rows 0, 1, 6: labelled 0 (fraud) and 1 (legit); all three change.
    assert (block.matches, block.labelled_matches, block.fraud_matches) == (3, 2, 1)
    assert (block.precision, block.recall, block.decisions_changed) == (0.5, 0.25, 3)
    # esc_big hits rows 1, 2, 3: labelled 1 (legit) and 2 (fraud); rows 1 and 2 change.
    assert (esc.matches, esc.labelled_matches, esc.fraud_matches) == (3, 2, 1)
    assert (esc.precision, esc.recall, esc.decisions_changed) == (0.5, 0.25, 2)
    assert report.decisions_before == {"approve": 5, "review": 1, "step_up": 1, "decline": 1}
    assert report.decisions_after == {"approve": 2, "review": 1, "step_up": 1, "decline": 4}
    assert report.changed == 4
    assert report.transitions == {
        "approve->decline": 2,
        "approve->review": 1,
        "review->decline": 1,
    }
    # flagged before: rows 1, 3, 5 (labelled 1 legit, 5 fraud); after: 0, 1, 2, 3, 5, 6
    # (labelled 0 F, 1 L, 2 F, 5 F).
    assert report.flagged == {
        "before": AlertStats(count=3, precision=0.5, recall=0.25),
        "after": AlertStats(count=6, precision=0.75, recall=0.75),
    }
    # declined before: row 5 (fraud); after: 0, 1, 5, 6 (labelled 0 F, 1 L, 5 F).
    assert report.declined == {
        "before": AlertStats(count=1, precision=1.0, recall=0.25),
        "after": AlertStats(count=4, precision=2 / 3, recall=0.5),
    }
    as_dict = report.to_dict()
    assert as_dict["rules"][0]["id"] == "block_t"
    assert as_dict["flagged"]["after"] == {"count": 6, "precision": 0.75, "recall": 0.75}


def test_against_a_baseline_rule_set() -> None:
    # Baseline: the escalation alone -> row 2 is already review, so only the block changes.
    report = _run(f"[{ESCALATE}]")
    block, esc = report.rules
    assert (block.decisions_changed, esc.decisions_changed) == (3, 1)  # esc_big: row 1 only
    assert report.decisions_before == {"approve": 4, "review": 2, "step_up": 1, "decline": 1}
    assert report.changed == 3
    assert report.transitions == {"approve->decline": 2, "review->decline": 1}


def test_no_labels_give_no_ratios() -> None:
    candidate = compile_rules(f"[{ESCALATE}]")
    data = inputs(numeric={"request.amount": [5000.0, 1.0]})
    report = dry_run(
        candidate, None, data, ["approve"] * 2, ["LOW"] * 2, "model", np.array([-1, -1])
    )
    (esc,) = report.rules
    assert (esc.matches, esc.precision, esc.recall) == (1, None, None)
    assert report.flagged["after"] == AlertStats(count=1, precision=None, recall=None)
