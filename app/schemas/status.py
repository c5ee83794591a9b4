"""Response models of the operations routes: health, readiness, the model and the features.

``/healthz`` answers :class:`HealthOut`, ``/readyz`` :class:`ReadyOut`, ``/v1/model``
:class:`ModelOut` (and a reload :class:`ReloadOut`), ``/v1/features/status``
:class:`FeatureStatusOut`; docs/reliability.md says what each status means.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

FeatureStoreStatus = Literal["loaded", "empty", "unreachable", "unavailable"]


class ComponentOut(BaseModel):
    """The model: ``loaded`` or ``fallback`` (rules). The online store: ``loaded`` (its
    load record and canaries found), ``empty`` (it answers without data for the
    FeatureService), ``unreachable`` (no answer), ``unavailable`` (cannot be opened or
    checked); see docs/reliability.md, "Health: what each probe means"."""

    status: Literal["loaded", "fallback", "empty", "unreachable", "unavailable"]
    detail: str | None = None


class LogComponentOut(BaseModel):
    """The audit or label log: ``writable``, ``failing`` (its writes fail, after
    hysteresis; ``detail`` says why) or ``unavailable`` (starting or stopping)."""

    status: Literal["writable", "failing", "unavailable"]
    detail: str | None = None


class RecordComponentOut(BaseModel):
    """The shared system of record: ``shipping`` (rows reach the database),
    ``unavailable`` (the database is away: rows wait in the pod's spool; scoring goes on)
    or ``spool_full`` (no room for more: scores are refused)."""

    status: Literal["shipping", "unavailable", "spool_full"]
    detail: str | None = None
    spooled: int = Field(description="decisions acknowledged here and not yet in the database")


class RulesComponentOut(BaseModel):
    """The analysts' rule set: ``loaded``; ``refused`` (the file changed and was refused:
    the set in force stays, ``detail`` says why); ``invalid`` (no valid set since
    start-up: scores would skip the block lists, so the pod is not ready)."""

    status: Literal["loaded", "refused", "invalid"]
    version: str | None = Field(description="rule_set_version of the answers")
    detail: str | None = None


class ChallengerComponentOut(BaseModel):
    """The challenger in shadow: ``off`` (no CHALLENGER_URI), ``scoring``, or
    ``unavailable`` (it did not load: ``detail``). Never changes the verdict."""

    status: Literal["off", "scoring", "unavailable"]
    version: str | None = None
    detail: str | None = None


ReadyStatus = Literal["ready", "degraded", "not_ready"]


class ReadyOut(BaseModel):
    status: ReadyStatus
    model: ComponentOut
    feature_store: ComponentOut
    audit_log: LogComponentOut | None = Field(
        default=None, description="failing: no score can be answered (not ready)"
    )
    label_log: LogComponentOut | None = Field(
        default=None, description="failing: feedback is refused (degraded, still ready)"
    )
    system_of_record: RecordComponentOut | None = Field(
        default=None,
        description="unavailable: degraded, still ready (rows spool); spool_full: not ready",
    )
    rules: RulesComponentOut | None = Field(
        default=None, description="refused: degraded, still ready; invalid: not ready"
    )
    challenger: ChallengerComponentOut | None = Field(
        default=None, description="informational: the champion answers either way"
    )


class HealthOut(BaseModel):
    """``alive``, or ``stuck`` with why (``detail``, omitted when alive)."""

    status: Literal["alive", "stuck"]
    detail: str | None = None


class ViewLoadOut(BaseModel):
    entities: int = Field(description="entities the load put in the view")
    canary: str | None = Field(description="one entity id loaded with the newest data")


class LoadRecordOut(BaseModel):
    """What the job that loaded the online store recorded."""

    feature_service: str
    end: datetime = Field(description="the online data is current up to here")
    loaded_at: datetime = Field(description="when the load finished")
    views: dict[str, ViewLoadOut]


class FeatureStatusOut(BaseModel):
    """The online store behind the FeatureService, as the readiness check last saw it."""

    feature_service: str
    online_store: str | None = Field(description="the online store's type (redis, sqlite)")
    status: FeatureStoreStatus
    detail: str | None
    ready: bool = Field(description="whether the online store lets /readyz answer 200")
    checked_at: datetime | None = Field(description="when the last check ran")
    last_check: FeatureStoreStatus | None = Field(
        description="the last check's own result (status changes only after several)"
    )
    record: LoadRecordOut | None = Field(description="the load record; null when none")


class ModelOut(BaseModel):
    """What is scoring right now."""

    version: str
    decision_source: Literal["model", "rules_fallback"]
    source: str = Field(description="the bundle location (path or MLflow URI)")
    alias: str | None
    registry_version: str | None
    problem: str | None = Field(description="why the rules fallback is active, if it is")
    feature_service: str
    features: list[str]
    thresholds: dict[str, float]
    metrics: dict[str, Any] = Field(description="validation metrics recorded at training")
    metadata: dict[str, Any]


class ReloadOut(BaseModel):
    """The outcome of a reload: the new bundle scores now, or it was refused and the
    previous model (or the rules) keeps scoring."""

    status: Literal["reloaded", "refused"]
    version: str = Field(description="the version scoring after the reload")
    previous_version: str
    problem: str | None = Field(description="why the new bundle was refused")
