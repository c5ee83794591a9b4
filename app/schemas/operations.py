"""Request and response models of the fraud-operations routes: rules, review, shadow."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.services.review import Outcome


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleOut(BaseModel):
    id: str
    description: str
    stage: Literal["allow", "block", "escalate"]
    enabled: bool
    reason: str
    decision: str | None
    risk_level: str | None
    fields: list[str]


class RuleSetOut(BaseModel):
    """The rule set in force, and the last refused file if any."""

    version: str | None = Field(description="the file's version (null: no valid set yet)")
    label: str | None = Field(description="rule_set_version in answers: version+lists.<id>")
    source: str
    loaded_at: datetime | None
    problem: str | None = Field(description="why the last file was refused (the set stays)")
    rules: list[RuleOut]
    lists: dict[str, int] = Field(description="each declared list and how many values it holds")


class DryRunIn(_In):
    """A rule set to try over a recorded period."""

    rules: str | None = Field(
        default=None,
        max_length=100_000,  # escaped, still under the 1 MiB body limit (MAX_BODY_BYTES)
        description="the candidate rule set, YAML or JSON text (null: the set in force)",
    )
    since: datetime
    until: datetime
    limit: int | None = Field(default=None, ge=1, description="at most RULES_DRY_RUN_MAX_ROWS")

    @model_validator(mode="after")
    def _until_after_since(self) -> DryRunIn:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class DryRunOut(BaseModel):
    """What the candidate would have decided, beside the set in force, on recorded rows."""

    rule_set: str
    baseline: str | None
    since: datetime
    until: datetime
    truncated: bool = Field(description="more rows than the limit: the newest were read")
    features_missing: int = Field(description="rows whose feature values were not recorded")
    report: dict[str, Any]


class ListEntryIn(_In):
    note: str = Field(default="", max_length=500)


class ListEntryOut(BaseModel):
    list: str
    value: str
    status: Literal["added", "present", "removed", "absent"]
    rule_set_version: str | None


class ReviewItemOut(BaseModel):
    transaction_id: str
    why: str = Field(description="review: the decision; sample: the control sample")
    enqueued_at: datetime
    status: Literal["open", "claimed", "resolved"]
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: str | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    amount: float | None
    customer_id: str | None
    terminal_id: str | None
    merchant_category: str | None
    channel: str | None
    tx_time: datetime | None
    fraud_probability: float | None
    risk_level: str | None
    decision: str | None
    decision_source: str | None
    reasons: list[str]
    rules: list[str]
    model_version: str | None


class ReviewQueueOut(BaseModel):
    items: list[ReviewItemOut]
    counts: dict[str, Any] = Field(description="entries per status, oldest open age (s)")


class ClaimOut(BaseModel):
    transaction_id: str
    status: Literal["claimed", "released"]
    lease_seconds: float


class OutcomeIn(_In):
    outcome: Outcome
    note: str = Field(default="", max_length=500)


class OutcomeOut(BaseModel):
    transaction_id: str
    outcome: Outcome
    status: Literal["resolved"]
    label: Literal["recorded", "duplicate", "conflict"] | None = Field(
        description="what the label log did with the label (null for unsure)"
    )


class ShadowOut(BaseModel):
    """The challenger in shadow: what is loaded, live counters, recorded comparison."""

    challenger: dict[str, Any]
    live: dict[str, Any]
    recorded: list[dict[str, Any]]
