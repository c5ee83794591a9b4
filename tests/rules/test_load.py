"""Parsing and validation: every problem of a bad file is reported at once, with its path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraud_rules import DEFAULT_RULES_FILE, RuleSetError, load_rule_file, parse_rule_set
from fraud_rules.__main__ import main
from fraud_rules.catalogue import FieldCatalogue
from tests.rules.helpers import CATALOGUE, compile_rules

GOOD = """
version: "2026-12-06.1"
description: "test"
lists:
  vip_customers: ["C000123"]
rules:
  - id: allow_vip
    stage: allow
    when: {field: request.customer_id, in_list: vip_customers}
    action: {decision: approve, reason: ALLOW_LISTED}
  - id: velocity_cap
    stage: escalate
    enabled: false
    when:
      all:
        - {field: feature.vel_tx_count_1h, op: ">=", value: 8}
        - any:
            - {field: request.amount, op: ">", value: 300}
            - not: {field: request.channel, in: [in_person]}
    action: {decision: step_up, reason: VELOCITY_CAP, risk_level: HIGH}
"""


def _problems(text: str, catalogue: FieldCatalogue = CATALOGUE) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(text, catalogue)
    assert all(p in str(caught.value) for p in caught.value.problems)
    return caught.value.problems


def test_a_good_file_compiles_with_its_metadata() -> None:
    rule_set = parse_rule_set(GOOD, CATALOGUE)
    assert rule_set.version == rule_set.label == "2026-12-06.1"
    assert rule_set.source_text == GOOD
    assert rule_set.lists == {"vip_customers": frozenset({"C000123"})}
    allow, cap = rule_set.rules
    assert (allow.id, allow.stage, allow.decision, allow.reason) == (
        "allow_vip", "allow", "approve", "ALLOW_LISTED"
    )  # fmt: skip
    assert allow.enabled and allow.risk_level is None
    assert not cap.enabled and cap.risk_level == "HIGH"
    assert cap.fields == ("feature.vel_tx_count_1h", "request.amount", "request.channel")


def test_json_is_accepted_too() -> None:
    body = {
        "version": "j1",
        "rules": [
            {
                "id": "big",
                "stage": "block",
                "when": {"field": "request.amount", "op": ">", "value": 10_000},
                "action": {"decision": "decline", "reason": "TOO_BIG"},
            }
        ],
    }
    assert [r.id for r in parse_rule_set(json.dumps(body), CATALOGUE).rules] == ["big"]


def test_a_bad_file_lists_every_problem_with_its_path() -> None:
    bad = """
version: "x"
surprise: 1
lists: {vip: ["C1"], codes: [1, 2]}
rules:
  - id: velocity_cap
    stage: escalate
    when:
      all:
        - {field: feature.tx_count_1h, op: ">=", value: 8}
        - {field: request.channel, op: ">", value: online}
        - {field: request.amount, op: "==", value: "abc"}
        - {field: request.customer_id, op: "==", value: 7}
        - {field: request.amount, op: "~", value: 3}
        - {field: request.customer_id, in_list: nope}
        - {field: request.terminal_id, in_list: codes}
        - {field: request.amount, in: [1, "x"]}
        - {wat: 1}
    action: {decision: approve, reason: bad_reason}
  - id: velocity_cap
    stage: block
    when: {field: request.amount, op: ">", value: 1}
    action: {reason: OK_REASON, colour: red}
  - id: allow_x
    stage: allow
    when: {field: request.amount, op: ">", value: 1}
    action: {decision: decline, reason: FINE}
"""
    problems = _problems(bad)
    p = "rules[0] (velocity_cap)"
    assert problems == [
        "surprise: Extra inputs are not permitted",
        f"{p}.action.reason: String should match pattern '^[A-Z][A-Z0-9_]{{1,63}}$'",
        f"{p}.action.decision: an escalate rule takes none, review, step_up, decline, not approve",
        f"{p}.when.all[0]: unknown field feature.tx_count_1h "
        "(did you mean feature.vel_tx_count_1h?)",
        f"{p}.when.all[1]: text field request.channel allows only == != in in_list, not >",
        f"{p}.when.all[2]: numeric field request.amount compared to text 'abc'",
        f"{p}.when.all[3]: text field request.customer_id compared to a number",
        f"{p}.when.all[4].op: Input should be '<', '<=', '>', '>=', '==' or '!='",
        f"{p}.when.all[5]: list nope is not declared under lists",
        f"{p}.when.all[6]: text field request.terminal_id tested against numbers (list codes)",
        f"{p}.when.all[7]: numeric field request.amount tested against text (in)",
        f"{p}.when.all[8]: a condition needs one of all, any, not, op, in, in_list",
        "rules[1] (velocity_cap).action.colour: Extra inputs are not permitted",
        "rules[1] (velocity_cap).action.decision: a block rule takes decline, step_up, "
        "review, not none",
        "rules[1] (velocity_cap).id: duplicate of rules[0]",
        "rules[2] (allow_x).action.decision: an allow rule takes approve, not decline",
    ]


def test_missing_keys_ids_and_values_are_named() -> None:
    problems = _problems(
        "rules:\n  - {id: X, stage: later, when: {field: request.amount, op: '>', value: .nan}}\n"
    )
    assert problems == [
        "version: Field required",
        "rules[0] (X).id: String should match pattern '^[a-z][a-z0-9_]{1,63}$'",
        "rules[0] (X).stage: Input should be 'allow', 'block' or 'escalate'",
        "rules[0] (X).action: Field required",
        "rules[0] (X).when.value: must be a finite number",
    ]


def test_an_unquoted_yaml_boolean_id_gets_a_hint() -> None:
    rule = "{id: off, stage: escalate, when: {field: request.amount, op: '>', value: 1}, "
    assert _problems(f"version: v\nrules: [{rule}action: {{reason: DISABLED}}}}]") == [
        "rules[0].id: Input should be a valid string",
        "rules[0].id: YAML reads yes/no/on/off as true/false: quote the id",
    ]


def test_unknown_field_under_the_wrong_prefix_is_suggested() -> None:
    text = GOOD.replace("feature.vel_tx_count_1h", "request.vel_tx_count_1h")
    (problem,) = _problems(text)
    assert problem.endswith(
        "unknown field request.vel_tx_count_1h (did you mean feature.vel_tx_count_1h?)"
    )


def test_depth_and_rule_count_limits() -> None:
    leaf = "{field: request.amount, op: '>', value: 1}"
    deep = leaf
    for _ in range(8):  # 9 levels
        deep = f"{{not: {deep}}}"
    rule = "{{id: r{i}, stage: escalate, when: {when}, action: {{reason: RULE}}}}"
    (problem,) = _problems(f"version: v\nrules: [{rule.format(i=0, when=deep)}]")
    assert problem == ("rules[0] (r0).when" + ".not" * 8 + ": conditions nest deeper than 8 levels")
    nested_ok = deep.removeprefix("{not: ").removesuffix("}")  # 8 levels
    assert compile_rules(f"[{rule.format(i=0, when=nested_ok)}]").rules
    many = ", ".join(rule.format(i=i, when=leaf) for i in range(201))
    assert _problems(f"version: v\nrules: [{many}]") == ["rules: 201 rules, at most 200"]
    most = ", ".join(rule.format(i=i, when=leaf) for i in range(200))
    assert len(compile_rules(f"[{most}]").rules) == 200


def test_yaml_syntax_error_gives_the_line() -> None:
    (problem,) = _problems('version: "v"\nrules:\n  - id: a\n    stage: [block\n')
    assert problem.startswith("line 5, column 1: not valid YAML/JSON:")
    assert _problems("- just\n- a list\n") == [
        "the file must be a mapping with version, lists and rules"
    ]


def test_the_default_rules_validate_against_the_serving_feature_service() -> None:
    from app.core.config import Settings
    from feature_repo import definitions

    service = getattr(definitions, Settings().feature_service)
    names = [f.name for p in service.feature_view_projections for f in p.features]
    from app.services.rulebook import REQUEST_VALUES

    catalogue = FieldCatalogue.for_features(names, REQUEST_VALUES)
    rule_set = load_rule_file(DEFAULT_RULES_FILE, catalogue)
    deployed = load_rule_file(Path(__file__).parents[2] / "k8s/base/rules.yaml", catalogue)
    assert [r.id for r in deployed.rules] == [r.id for r in rule_set.rules]
    assert len(rule_set.rules) >= 8
    assert {r.stage for r in rule_set.rules} == {"allow", "block", "escalate"}
    used = {f for r in rule_set.rules for f in r.fields if f.startswith("feature.")}
    assert used and used <= {f"feature.{n}" for n in names}
    # The same file against a catalogue without the velocity features is refused.
    with pytest.raises(RuleSetError, match="unknown field feature.vel_tx_count_1h"):
        load_rule_file(DEFAULT_RULES_FILE, FieldCatalogue.for_features(["is_new_customer"]))


def test_check_command(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    features = tmp_path / "features.txt"
    features.write_text("# v2\nvel_tx_count_1h\nis_new_customer\n")
    assert main(["check", str(DEFAULT_RULES_FILE), "--features", str(features)]) == 0
    assert "OK, version 2026-12-06.1" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("vel_tx_count_1h", "vel_tx_count_2h"))
    assert main(["check", str(bad), "--features", str(features)]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s)" in err and "unknown field feature.vel_tx_count_2h" in err
    assert main(["check", str(tmp_path / "absent.yaml")]) == 2


def test_a_text_value_the_field_never_takes_is_refused_with_the_close_one() -> None:
    """A typo in a value (``in-person``) would make a rule that never matches: refused,
    in comparisons, inline sets and declared lists alike; the model's values are known too."""
    catalogue = FieldCatalogue.for_features(
        ["is_new_customer"], {"request.channel": ("in_person", "online")}
    )
    text = """
version: v
lists: {channels: [online, onlien]}
rules:
  - id: rule_a
    stage: escalate
    when: {field: request.channel, op: "==", value: in-person}
    action: {reason: RULE_A}
  - id: rule_b
    stage: escalate
    when:
      any:
        - {field: request.channel, in: [online, pos]}
        - {field: request.channel, in_list: channels}
    action: {reason: RULE_B}
  - id: rule_c
    stage: escalate
    when: {field: model.decision, op: "==", value: decline}
    action: {reason: RULE_C}
  - id: rule_d
    stage: escalate
    when: {field: model.risk_level, op: "==", value: high}
    action: {reason: RULE_D}
"""
    with pytest.raises(RuleSetError) as refused:
        parse_rule_set(text, catalogue)
    problems = "\n".join(refused.value.problems)
    assert "'in-person' is never a value of request.channel (did you mean 'in_person'?)" in problems
    assert "'pos' is never a value of request.channel" in problems
    assert "'onlien' is never a value of request.channel (did you mean 'online'?)" in problems
    assert "'high' is never a value of model.risk_level (did you mean 'HIGH'?)" in problems
    assert len(refused.value.problems) == 4  # rule_c is sound
