"""Parse and validate a rule-set file (YAML or JSON) into a CompiledRuleSet, reporting
every problem at once with its path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fraud_rules.catalogue import FieldCatalogue
from fraud_rules.engine import CompiledRule, CompiledRuleSet, RuleMeta
from fraud_rules.schema import (
    ID_PATTERN,
    MAX_DEPTH,
    MAX_RULES,
    STAGE_DECISIONS,
    AllOf,
    AnyOf,
    Compare,
    CompareSpec,
    InListSpec,
    InSpec,
    Member,
    Node,
    NotOf,
    RuleSetSpec,
    RuleSpec,
    fields_of,
)

_LOGIC = ("all", "any", "not")


class RuleSetError(ValueError):
    """A rule set that cannot be used; ``problems`` lists each one with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem(s) in the rule set:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _validate(model: type[BaseModel], raw: Any, path: str, errors: list[str]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(f"{path}{_loc(err['loc'])}: {err['msg']}")
        return None


def _bad_value(value: object) -> str | None:
    """Why a literal cannot be compared with (None when it can)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not isinstance(value, str | int | float):
        return f"must be a number or text, got {type(value).__name__}"
    return None


class _ConditionParser:
    def __init__(self, catalogue: FieldCatalogue, lists: Mapping[str, list[Any]]) -> None:
        self.catalogue = catalogue
        self.lists = lists
        self.errors: list[str] = []

    def parse(self, raw: Any, path: str, depth: int = 1) -> Node | None:
        if depth > MAX_DEPTH:
            self.errors.append(f"{path}: conditions nest deeper than {MAX_DEPTH} levels")
            return None
        if not isinstance(raw, dict):
            self.errors.append(f"{path}: a condition must be a mapping, got {type(raw).__name__}")
            return None
        logic = [key for key in _LOGIC if key in raw]
        if logic:
            if len(raw) != 1:
                self.errors.append(f"{path}: '{logic[0]}' must be the condition's only key")
                return None
            return self._logic(logic[0], raw[logic[0]], path, depth)
        if "op" in raw:
            spec = _validate(CompareSpec, raw, path, self.errors)
            return self._compare(spec, path) if spec else None
        if "in" in raw:
            spec = _validate(InSpec, raw, path, self.errors)
            return self._member(spec.field, list(spec.in_), None, path) if spec else None
        if "in_list" in raw:
            spec = _validate(InListSpec, raw, path, self.errors)
            return self._in_list(spec, path) if spec else None
        self.errors.append(f"{path}: a condition needs one of all, any, not, op, in, in_list")
        return None

    def _logic(self, key: str, body: Any, path: str, depth: int) -> Node | None:
        if key == "not":
            child = self.parse(body, f"{path}.not", depth + 1)
            return NotOf(child) if child else None
        if not isinstance(body, list) or not body:
            self.errors.append(f"{path}.{key}: must be a non-empty list of conditions")
            return None
        children = [self.parse(c, f"{path}.{key}[{i}]", depth + 1) for i, c in enumerate(body)]
        if any(c is None for c in children):
            return None
        kids = tuple(c for c in children if c is not None)
        return AllOf(kids) if key == "all" else AnyOf(kids)

    def _kind(self, field: str, path: str) -> str | None:
        kind = self.catalogue.kind(field)
        if kind is None:
            close = self.catalogue.close_matches(field)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            self.errors.append(f"{path}: unknown field {field}{hint}")
        return kind

    def _compare(self, spec: CompareSpec, path: str) -> Node | None:
        kind = self._kind(spec.field, path)
        problem = _bad_value(spec.value)
        if problem:
            self.errors.append(f"{path}.value: {problem}")
            return None
        if kind == "text":
            if spec.op not in ("==", "!="):
                self.errors.append(
                    f"{path}: text field {spec.field} allows only == != in in_list, not {spec.op}"
                )
            elif not isinstance(spec.value, str):
                self.errors.append(f"{path}: text field {spec.field} compared to a number")
            elif not self._known(spec.field, [spec.value], f"{path}.value"):
                return Compare(spec.field, spec.op, spec.value)
        elif kind == "numeric":
            if isinstance(spec.value, str):
                self.errors.append(
                    f"{path}: numeric field {spec.field} compared to text {spec.value!r}"
                )
            else:
                return Compare(spec.field, spec.op, float(spec.value))
        return None

    def _member(self, field: str, values: list[Any], name: str | None, path: str) -> Node | None:
        kind = self._kind(field, path)
        what = f"list {name}" if name else "in"
        if name is None:  # declared lists are checked once, where they are declared
            problems = [(i, p) for i, v in enumerate(values) if (p := _bad_value(v))]
            for i, problem in problems:
                self.errors.append(f"{path}.in[{i}]: {problem}")
            if problems:
                return None
        if kind == "text" and not all(isinstance(v, str) for v in values):
            self.errors.append(f"{path}: text field {field} tested against numbers ({what})")
        elif kind == "numeric" and not all(isinstance(v, int | float) for v in values):
            self.errors.append(f"{path}: numeric field {field} tested against text ({what})")
        elif kind == "text" and self._known(field, values, f"{path}.{what}"):
            return None
        elif kind is not None:
            if kind == "numeric":
                values = [float(v) for v in values]
            return Member(field, tuple(values), name)
        return None

    def _known(self, field: str, values: list[Any], path: str) -> bool:
        """Record every value ``field`` can never take; True when there was one."""
        problems = [p for v in values if (p := self.catalogue.unknown_value(field, v))]
        self.errors += [f"{path}: {problem}" for problem in problems]
        return bool(problems)

    def _in_list(self, spec: InListSpec, path: str) -> Node | None:
        if spec.in_list not in self.lists:
            self._kind(spec.field, path)
            self.errors.append(f"{path}: list {spec.in_list} is not declared under lists")
            return None
        return self._member(spec.field, list(self.lists[spec.in_list]), spec.in_list, path)


def _rule(raw: Any, index: int, parser: _ConditionParser, errors: list[str]) -> Any:
    ident = raw.get("id") if isinstance(raw, dict) else None
    path = f"rules[{index}]" + (f" ({ident})" if isinstance(ident, str) else "")
    if not isinstance(raw, dict):
        errors.append(f"{path}: a rule must be a mapping")
        return None
    spec: RuleSpec | None = _validate(RuleSpec, raw, path, errors)
    if isinstance(ident, bool):
        errors.append(f"{path}.id: YAML reads yes/no/on/off as true/false: quote the id")
    node = parser.parse(raw["when"], f"{path}.when") if "when" in raw else None
    # Checked on the raw values too, so it is reported beside the rule's other problems.
    stage, action = raw.get("stage"), raw.get("action")
    decision = action.get("decision") if isinstance(action, dict) else None
    if stage in STAGE_DECISIONS and decision not in STAGE_DECISIONS[stage]:
        allowed = ", ".join(d or "none" for d in STAGE_DECISIONS[stage])
        article = "an" if stage[0] in "aeiou" else "a"
        got = "none" if decision is None else decision
        errors.append(f"{path}.action.decision: {article} {stage} rule takes {allowed}, not {got}")
        return None
    return (spec, node) if spec is not None and node is not None else None


def parse_rule_set(text: str, catalogue: FieldCatalogue) -> CompiledRuleSet:
    """Validate and compile a rule set; raises RuleSetError listing every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleSetError([f"{where}not valid YAML/JSON: {problem}"]) from exc
    if not isinstance(raw, dict):
        raise RuleSetError(["the file must be a mapping with version, lists and rules"])
    errors: list[str] = []
    top = _validate(RuleSetSpec, raw, "", errors)
    errors = [e.lstrip(".") for e in errors]
    if top is not None:
        for name, values in top.lists.items():
            if not re.match(ID_PATTERN, name):
                errors.append(f"lists.{name}: a list name must match {ID_PATTERN}")
            errors += [
                f"lists.{name}[{i}]: {p}"
                for i, v in enumerate(values)
                if (p := _bad_value(v) or ("must not be a bool" if isinstance(v, bool) else ""))
            ]
    lists_raw, rules_raw = raw.get("lists"), raw.get("rules")
    lists: dict[str, Any] = lists_raw if isinstance(lists_raw, dict) else {}
    if not isinstance(rules_raw, list):
        rules_raw = []
    if len(rules_raw) > MAX_RULES:
        errors.append(f"rules: {len(rules_raw)} rules, at most {MAX_RULES}")
    parser = _ConditionParser(catalogue, {k: v for k, v in lists.items() if isinstance(v, list)})
    parsed = []
    seen: dict[str, int] = {}
    for i, rule_raw in enumerate(rules_raw):
        before = len(errors) + len(parser.errors)
        result = _rule(rule_raw, i, parser, errors)
        ident = rule_raw.get("id") if isinstance(rule_raw, dict) else None
        if isinstance(ident, str):
            if ident in seen:
                errors.append(f"rules[{i}] ({ident}).id: duplicate of rules[{seen[ident]}]")
            seen.setdefault(ident, i)
        if result is not None and len(errors) + len(parser.errors) == before:
            parsed.append(result)
    problems = errors + parser.errors
    if problems or top is None:
        raise RuleSetError(sorted(problems, key=_order) or ["invalid rule set"])
    compiled = [
        CompiledRule(
            RuleMeta(
                id=spec.id,
                description=spec.description,
                stage=spec.stage,
                enabled=spec.enabled,
                reason=spec.action.reason,
                decision=spec.action.decision,
                risk_level=spec.action.risk_level,
                fields=fields_of(node),
            ),
            node,
        )
        for spec, node in parsed
    ]
    declared = {name: frozenset(values) for name, values in top.lists.items()}
    kinds = {f: catalogue.kind(f) or "numeric" for r in compiled for f in r.meta.fields}
    return CompiledRuleSet(top.version, top.description, compiled, declared, text, kinds)


def _order(problem: str) -> int:
    # Problems of rules[i] sort by i (numerically, stable), the file's own problems first.
    if problem.startswith("rules["):
        head = problem[6:].split("]", 1)[0]
        if head.isdigit():
            return int(head) + 1
    return 0


def load_rule_file(path: Path | str, catalogue: FieldCatalogue) -> CompiledRuleSet:
    """Read and compile a rule-set file."""
    return parse_rule_set(Path(path).read_text(encoding="utf-8"), catalogue)
