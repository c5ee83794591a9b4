"""The rule-set file as pydantic models (strict: unknown keys are errors) and the parsed
condition tree the evaluators are compiled from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from fraud_model.decisions import Decision, RiskLevel

ID_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
REASON_PATTERN = r"^[A-Z][A-Z0-9_]{1,63}$"
MAX_RULES = 200
MAX_DEPTH = 8

Stage = Literal["allow", "block", "escalate"]
Op = Literal["<", "<=", ">", ">=", "==", "!="]

# Which decisions each stage may take (None = the action may leave the decision out).
STAGE_DECISIONS: dict[str, tuple[Decision | None, ...]] = {
    "allow": ("approve",),
    "block": ("decline", "step_up", "review"),
    "escalate": (None, "review", "step_up", "decline"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ActionSpec(_Strict):
    reason: str = Field(pattern=REASON_PATTERN)
    decision: Decision | None = None
    risk_level: RiskLevel | None = None


class RuleSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    description: StrictStr = ""
    stage: Stage
    enabled: StrictBool = True
    when: Any  # parsed by fraud_rules.load.parse_condition, which knows the path and fields
    action: ActionSpec


class RuleSetSpec(_Strict):
    version: StrictStr = Field(min_length=1)
    description: StrictStr = ""
    lists: dict[str, list[Any]] = Field(default_factory=dict)  # values: fraud_rules.load
    rules: list[Any]


class CompareSpec(_Strict):
    field: StrictStr
    op: Op
    value: Any  # a number, a bool or text: checked against the field's kind by the parser


class InSpec(_Strict):
    model_config = ConfigDict(populate_by_name=True)
    field: StrictStr
    in_: list[Any] = Field(alias="in")


class InListSpec(_Strict):
    field: StrictStr
    in_list: StrictStr


# The parsed tree: one per rule, shared by the scalar and the vectorised evaluators.
@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class NotOf:
    child: Node


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: float | str  # float for numeric fields (bools as 0/1), str for text fields


@dataclass(frozen=True)
class Member:
    field: str
    values: tuple[float | str, ...]  # the literal `in:` values ...
    list_name: str | None = None  # ... or the declared list they come from


Node = AllOf | AnyOf | NotOf | Compare | Member


def fields_of(node: Node) -> tuple[str, ...]:
    """The fields a condition reads, in first-use order."""
    if isinstance(node, AllOf | AnyOf):
        seen = dict.fromkeys(f for child in node.children for f in fields_of(child))
        return tuple(seen)
    if isinstance(node, NotOf):
        return fields_of(node.child)
    return (node.field,)
