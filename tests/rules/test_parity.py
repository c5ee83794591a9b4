"""The scalar and the vectorised evaluators agree, on random rule sets over random rows
(missing values included), for matches and for decisions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from fraud_model.decisions import DECISIONS, RISK_LEVELS
from fraud_rules import SCALAR_MAX_ROWS, CompiledRuleSet, RuleInputs, parse_rule_set
from tests.rules.helpers import CATALOGUE

NUMERIC = {  # field -> the values rows (and rules) draw from
    "request.amount": [0.0, 10.0, 99.5, 100.0, 300.0, 1000.0, 5000.0],
    "feature.vel_tx_count_1h": [0.0, 1.0, 5.0, 8.0, 12.0],
    "model.score": [0.0, 0.1, 0.3, 0.5, 0.9],
    "request.is_foreign": [0.0, 1.0],
}
TEXT = {
    "request.channel": ["online", "in_person", ""],
    "request.customer_id": ["C1", "C2", "C3", "C4"],
    "request.merchant_category": ["grocery", "jewelry", "travel"],
}
LISTS = {"custs": ["C1", "C3"], "cats": ["jewelry"], "amounts": [100.0, 5000.0]}
ROWS = 5_000


def _condition(rng: np.random.Generator, depth: int) -> dict[str, Any]:
    kind = rng.integers(0, 7 if depth < 4 else 4)
    if kind >= 4:
        if kind == 6:
            return {"not": _condition(rng, depth + 1)}
        key = "all" if kind == 4 else "any"
        return {key: [_condition(rng, depth + 1) for _ in range(rng.integers(1, 4))]}
    if rng.random() < 0.6:
        field = str(rng.choice(list(NUMERIC)))
        pool: list[Any] = NUMERIC[field]
        ops = ["<", "<=", ">", ">=", "==", "!="]
    else:
        field = str(rng.choice(list(TEXT)))
        pool = TEXT[field]
        ops = ["==", "!="]
    if kind == 0:
        return {"field": field, "in": [pool[i] for i in rng.choice(len(pool), 2)]}
    if kind == 1:
        names = ["amounts"] if field in NUMERIC else ["custs", "cats"]
        return {"field": field, "in_list": str(rng.choice(names))}
    return {"field": field, "op": str(rng.choice(ops)), "value": pool[rng.integers(len(pool))]}


def _rule_set(rng: np.random.Generator, rules: int) -> CompiledRuleSet:
    body = []
    for i in range(rules):
        stage = str(rng.choice(["allow", "block", "escalate", "escalate"]))
        decision = {"allow": "approve", "block": "decline", "escalate": "step_up"}[stage]
        if stage == "block":
            decision = str(rng.choice(["review", "step_up", "decline"]))
        action = {"reason": f"R_{i}", "decision": decision}
        if rng.random() < 0.5:
            action["risk_level"] = str(rng.choice(RISK_LEVELS))
        if stage == "escalate" and rng.random() < 0.3:
            del action["decision"]
        body.append(
            {
                "id": f"rule_{i}",
                "stage": stage,
                "enabled": bool(rng.random() > 0.1),
                "when": _condition(rng, 1),
                "action": action,
            }
        )
    text = json.dumps({"version": "p", "lists": LISTS, "rules": body})
    return parse_rule_set(text, CATALOGUE)


def _rows(rng: np.random.Generator) -> RuleInputs:
    numeric = {}
    for field, pool in NUMERIC.items():
        column = np.asarray(pool)[rng.integers(0, len(pool), ROWS)]
        column[rng.random(ROWS) < 0.1] = np.nan
        numeric[field] = column
    text: dict[str, list[str | None]] = {}
    for field, pool in TEXT.items():
        text[field] = [
            None if rng.random() < 0.1 else pool[i] for i in rng.integers(0, len(pool), ROWS)
        ]
    del text["request.merchant_category"]  # a field the inputs lack: missing everywhere
    return RuleInputs(n=ROWS, numeric=numeric, text=text)


def _chunk(inputs: RuleInputs, start: int, stop: int) -> RuleInputs:
    return RuleInputs(
        n=stop - start,
        numeric={k: v[start:stop] for k, v in inputs.numeric.items()},
        text={k: v[start:stop] for k, v in inputs.text.items()},
    )


@pytest.mark.parametrize("seed", range(4))
def test_scalar_and_vectorised_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rule_set, inputs = _rule_set(rng, 15), _rows(rng)
    scalar = rule_set.matches(inputs, vectorised=False)
    vectorised = rule_set.matches(inputs, vectorised=True)
    np.testing.assert_array_equal(scalar, vectorised)
    share = vectorised.mean(axis=0)
    assert ((share > 0) & (share < 1)).sum() >= 5  # the rules really split the rows

    levels = [str(RISK_LEVELS[i]) for i in rng.integers(0, 4, ROWS)]
    decisions = [DECISIONS[level] for level in levels]  # type: ignore[index]
    batch = rule_set.decide(inputs, decisions, levels, "model")
    single: list[Any] = []
    for start in range(0, ROWS, SCALAR_MAX_ROWS):
        stop = min(start + SCALAR_MAX_ROWS, ROWS)
        single += rule_set.decide(
            _chunk(inputs, start, stop), decisions[start:stop], levels[start:stop], "model"
        )
    assert single == batch
    assert sum(o is not None and o.decision_source == "rule" for o in batch) > ROWS // 10
