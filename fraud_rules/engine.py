"""A compiled rule set: which rules match which rows, and the decision they lead to.

Precedence: (1) a matching ``allow`` rule approves (risk level LOW unless
it sets one) and nothing below applies; (2) else the most severe decision of the matching
``block`` rules is forced, up or down (risk level: the highest such rule sets, else the
model's); (3) else the model's decision and level stand; (4) then each matching
``escalate`` rule raises the decision and the level to at least its own, never lowering.
An outcome's ``matched`` lists every matching rule of every stage (file order); its
``reasons`` those that applied (the allow rules when one matched, else every matching
block and escalate rule). ``decision_source`` is "rule" when an allow or block rule
matched or an escalation raised the decision, else the model's source. ``decide`` gives
None for a row no rule matched, so the common case costs nothing per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fraud_model.decisions import RISK_LEVELS, Decision, RiskLevel
from fraud_rules.compile import Columns, ScalarFn, VectorFn, scalar, vector
from fraud_rules.schema import Node

FloatArray = npt.NDArray[np.float64]
SCALAR_MAX_ROWS = 8
SEVERITY: tuple[Decision, ...] = ("approve", "review", "step_up", "decline")
_DECISION_INDEX: dict[str, int] = {d: i for i, d in enumerate(SEVERITY)}
_LEVEL_INDEX: dict[str, int] = {level: i for i, level in enumerate(RISK_LEVELS)}


@dataclass(frozen=True)
class RuleMeta:
    """What a rule is, for listings and audits."""

    id: str
    description: str
    stage: str
    enabled: bool
    reason: str
    decision: Decision | None
    risk_level: RiskLevel | None
    fields: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRule:
    meta: RuleMeta
    node: Node


@dataclass(frozen=True)
class RuleInputs:
    """n rows of fields: numeric ones as float64 arrays (NaN missing), text ones as
    sequences (None missing). A field the inputs lack is missing on every row."""

    n: int
    numeric: Mapping[str, FloatArray]
    text: Mapping[str, Sequence[str | None]]


class RuleOutcome(NamedTuple):
    decision: Decision
    risk_level: RiskLevel
    decision_source: str
    matched: tuple[str, ...]  # every matching rule, all stages, file order
    reasons: tuple[tuple[str, str], ...]  # (reason code, rule id) of the rules that applied


class CompiledRuleSet:
    """Validated rules with both evaluators; build it with fraud_rules.load.parse_rule_set."""

    def __init__(
        self,
        version: str,
        description: str,
        rules: Sequence[CompiledRule],
        lists: Mapping[str, frozenset[str | float]],
        source_text: str,
        kinds: Mapping[str, str],
        lists_version: str | None = None,
    ) -> None:
        self.version = version
        self.description = description
        self.source_text = source_text
        self.lists: dict[str, frozenset[str | float]] = dict(lists)
        self.lists_version = lists_version
        self._compiled = tuple(rules)
        self.rules: tuple[RuleMeta, ...] = tuple(r.meta for r in rules)
        self._kinds = dict(kinds)  # field -> "numeric" | "text", for the fields used
        live = [r for r in rules if r.meta.enabled]
        self._live_index = tuple(i for i, r in enumerate(rules) if r.meta.enabled)
        self._scalar: tuple[ScalarFn, ...] = tuple(scalar(r.node, kinds, lists) for r in live)
        self._vector: tuple[VectorFn, ...] = tuple(vector(r.node, kinds, lists) for r in live)
        used = {f for r in live for f in r.meta.fields}
        self._numeric_fields = tuple(f for f in sorted(used) if kinds[f] == "numeric")
        self._text_fields = tuple(f for f in sorted(used) if kinds[f] == "text")
        self._stage = tuple(r.stage for r in self.rules)
        self._ids = tuple(r.id for r in self.rules)
        self._reason = tuple((r.reason, r.id) for r in self.rules)
        self._decision = tuple(_DECISION_INDEX.get(r.decision or "", -1) for r in self.rules)
        self._level = tuple(_LEVEL_INDEX.get(r.risk_level or "", -1) for r in self.rules)

    @property
    def label(self) -> str:
        """The rule_set_version of answers and audit records."""
        if self.lists_version is None:
            return self.version
        return f"{self.version}+lists.{self.lists_version}"

    def with_lists(
        self, extra: Mapping[str, Iterable[str | float]], lists_version: str
    ) -> CompiledRuleSet:
        """A copy with ``extra`` values added to the declared lists (undeclared names are
        ignored: no rule can read them)."""
        merged = {
            name: values | frozenset(extra.get(name, ())) for name, values in self.lists.items()
        }
        return CompiledRuleSet(
            self.version,
            self.description,
            self._compiled,
            merged,
            self.source_text,
            self._kinds,
            lists_version,
        )

    def _rows(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{} for _ in range(inputs.n)]
        for field in self._numeric_fields:
            column = inputs.numeric.get(field)
            for i, row in enumerate(rows):
                row[field] = float("nan") if column is None else float(column[i])
        for field in self._text_fields:
            texts = inputs.text.get(field)
            for i, row in enumerate(rows):
                row[field] = None if texts is None else texts[i]
        return rows

    def _hits_scalar(self, inputs: RuleInputs) -> list[list[int]]:
        index = self._live_index
        return [
            [index[j] for j, fn in enumerate(self._scalar) if fn(row)] for row in self._rows(inputs)
        ]

    def matches(self, inputs: RuleInputs, vectorised: bool | None = None) -> np.ndarray:
        """Bool matrix, rows x rules in file order (disabled rules never match). The scalar
        evaluator runs for n <= SCALAR_MAX_ROWS unless ``vectorised`` says otherwise."""
        out = np.zeros((inputs.n, len(self.rules)), dtype=bool)
        if vectorised is None:
            vectorised = inputs.n > SCALAR_MAX_ROWS
        if not vectorised:
            for i, hits in enumerate(self._hits_scalar(inputs)):
                out[i, hits] = True
        elif inputs.n:
            cols = Columns(inputs.n, inputs.numeric, inputs.text)
            for j, fn in zip(self._live_index, self._vector, strict=True):
                out[:, j] = fn(cols)
        return out

    def decide(
        self,
        inputs: RuleInputs,
        model_decisions: Sequence[str],
        model_levels: Sequence[str],
        model_source: str,
    ) -> list[RuleOutcome | None]:
        """Each row's outcome under the precedence; None where no rule matched (the
        model's answer stands unchanged)."""
        outcomes: list[RuleOutcome | None] = [None] * inputs.n
        if inputs.n <= SCALAR_MAX_ROWS:
            hit_rows = [(i, h) for i, h in enumerate(self._hits_scalar(inputs)) if h]
        else:
            matrix = self.matches(inputs)
            rows = np.flatnonzero(matrix.any(axis=1))
            hit_row, hit_rule = np.nonzero(matrix[rows])  # row-major: each row's rules in order
            bounds = np.searchsorted(hit_row, np.arange(1, rows.size)).tolist()
            per_row = np.split(np.asarray(hit_rule), bounds) if rows.size else []
            hit_rows = list(zip(rows.tolist(), (h.tolist() for h in per_row), strict=True))
        for i, hits in hit_rows:
            outcomes[i] = self._outcome(hits, model_decisions[i], model_levels[i], model_source)
        return outcomes

    def _outcome(self, hits: list[int], decision: str, level: str, source: str) -> RuleOutcome:
        matched = tuple([self._ids[j] for j in hits])
        allow = [j for j in hits if self._stage[j] == "allow"]
        if allow:
            lv = max([self._level[j] for j in allow])
            reasons = tuple([self._reason[j] for j in allow])
            return RuleOutcome("approve", RISK_LEVELS[max(lv, 0)], "rule", matched, reasons)
        d, lv = _DECISION_INDEX[decision], _LEVEL_INDEX[level]
        block = [j for j in hits if self._stage[j] == "block"]
        changed = bool(block)
        if block:
            d = max(self._decision[j] for j in block)
            lv = max((self._level[j] for j in block if self._level[j] >= 0), default=lv)
        for j in hits:
            if self._stage[j] == "escalate":
                if self._decision[j] > d:
                    d, changed = self._decision[j], True
                lv = max(lv, self._level[j])
        reasons = tuple([self._reason[j] for j in hits])
        return RuleOutcome(
            SEVERITY[d], RISK_LEVELS[lv], "rule" if changed else source, matched, reasons
        )
