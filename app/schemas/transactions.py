"""Request and response models of scoring and feedback, by direction (``*In`` / ``*Out``).

Requests are strict: unknown fields, non-finite numbers, numbers sent as strings,
timestamps without a time zone and identifiers outside ``[A-Za-z0-9_-]{1,64}`` are
rejected. An RFC 3339 leap second (``23:59:60`` UTC, after the offset) reads as
``23:59:59.999999``, the last instant Python can represent in that minute. Optional
context defaults to ``feature_repo.request_features.REQUEST_DEFAULTS``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from feature_repo.request_features import REQUEST_DEFAULTS
from feature_repo.vocabulary import CHANNELS, ENTRY_MODES, MERCHANT_CATEGORIES
from fraud_model.decisions import Decision, RiskLevel

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
EntryMode = Literal[ENTRY_MODES]  # type: ignore[valid-type]
MerchantCategory = Literal[MERCHANT_CATEGORIES]  # type: ignore[valid-type]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_LEAP_SECOND = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):60(?:\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=False)


class TransactionIn(BaseModel):
    """One card transaction as the payment switch sends it."""

    model_config = _STRICT

    transaction_id: Identifier
    customer_id: Identifier
    terminal_id: Identifier
    timestamp: AwareDatetime = Field(description="RFC 3339 with a time zone")
    amount: float = Field(ge=0.01, le=1_000_000, description="in the card's currency")
    merchant_category: MerchantCategory | None = Field(
        None, description=f"default: {REQUEST_DEFAULTS['merchant_category']} (unknown)"
    )
    channel: Channel = REQUEST_DEFAULTS["channel"]
    entry_mode: EntryMode = REQUEST_DEFAULTS["entry_mode"]
    is_foreign: bool = bool(REQUEST_DEFAULTS["is_foreign"])
    distance_from_home_km: float = Field(REQUEST_DEFAULTS["distance_from_home_km"], ge=0, le=20_050)

    @property
    def epoch_seconds(self) -> float:
        return self.timestamp.timestamp()

    @field_validator("amount", "distance_from_home_km", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any) -> Any:
        if isinstance(value, str | bytes | bool):
            raise ValueError("must be a JSON number")
        return value

    @field_validator("is_foreign", mode="before")
    @classmethod
    def _booleans_are_booleans(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamps_are_strings(cls, value: Any) -> Any:
        # pydantic alone would also read "1717500000" as Unix seconds
        if not isinstance(value, str | datetime) or (
            isinstance(value, str) and not _RFC3339.fullmatch(value)
        ):
            raise ValueError("must be an RFC 3339 string with a time zone")
        return _leap_second(value) if isinstance(value, str) else value

    @field_validator("timestamp")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        if value < EARLIEST or value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("must lie between 2000-01-01 and one day from now")
        return value


def _leap_second(text: str) -> str | datetime:
    """``text`` itself, or for a leap second (second 60, valid only at 23:59 UTC) the
    datetime of 23:59:59.999999 in the same offset."""
    match = _LEAP_SECOND.fullmatch(text)
    if match is None:
        return text
    day, hour, minute, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    try:
        moment = datetime.fromisoformat(f"{day}T{hour}:{minute}:59.999999{offset}")
    except ValueError:
        raise ValueError("must be an RFC 3339 string with a time zone") from None
    utc = moment.astimezone(UTC)
    if (utc.hour, utc.minute) != (23, 59):
        raise ValueError("second 60 is a leap second: only at 23:59 UTC")
    return moment


class BatchIn(BaseModel):
    """Up to ``max_batch`` transactions scored with one online-feature call."""

    model_config = _STRICT

    # No max_length: a longer batch is a 413 (app.api.routes.predict counts it before any
    # transaction is validated), not a schema error.
    transactions: list[TransactionIn] = Field(
        min_length=1, description="at most MAX_BATCH (1,000); more is a 413"
    )


class ReasonOut(BaseModel):
    """One reason code: ``contribution`` is log-odds (classifier), a share of the
    reconstruction error (autoencoder) or the rule's weight (rules)."""

    code: str
    feature: str
    source: Literal["classifier", "autoencoder", "rules", "rule"] = Field(
        description="classifier or autoencoder: the model; rules: the fallback without a "
        "model; rule: a rule of the analysts' rule set (feature names the rule)"
    )
    contribution: float
    value: float


class ScoreOut(BaseModel):
    """The answer for one transaction."""

    transaction_id: str
    fraud_probability: float = Field(ge=0, le=1)
    risk_level: RiskLevel
    decision: Decision
    ae_score: float | None
    clf_score: float | None
    reasons: list[ReasonOut]
    model_version: str
    decision_source: Literal["model", "rule", "rules_fallback"] = Field(
        description="model; rule when a rule of the rule set changed the model's decision; "
        "rules_fallback when no model is loaded"
    )
    rule_set_version: str = Field(description="the rule set in force ('' without one)")
    rules_matched: list[str] = Field(description="ids of the rule set's rules that matched")
    degraded: list[str] = Field(
        description="why some features were not used as stored: '<view>:new_entity', "
        "'<view>:stale', or 'feature_store:timeout|error|busy|unavailable'"
    )
    latency_ms: float = Field(description="server-side time from receipt to this answer")


class BatchOut(BaseModel):
    """Answers in the order of the request's transactions."""

    results: list[ScoreOut]
    count: int
    model_version: str
    latency_ms: float


FeedbackSource = Literal["chargeback", "analyst", "customer", "issuer"]


class FeedbackIn(BaseModel):
    """A confirmed label for a scored transaction."""

    model_config = _STRICT

    transaction_id: Identifier
    is_fraud: bool
    source: FeedbackSource = "chargeback"

    @field_validator("is_fraud", mode="before")
    @classmethod
    def _booleans_are_booleans(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value


class FeedbackOut(BaseModel):
    transaction_id: str
    is_fraud: bool
    status: Literal["recorded", "duplicate", "conflict"] = Field(
        description="recorded: new label; duplicate: same label again (no-op); "
        "conflict: a different label was already recorded (kept for review, not applied)"
    )
