"""A rule set tried over a recorded period of the system of record (``/v1/rules/dry-run``).

Every decision on record carries what the rules read: the request's fields, the model's
own score and decision (before the rule set), and the feature values the model saw
(float32, in the FeatureService's order). A candidate rule set is run over those rows
beside the set in force, so an analyst sees how many decisions it would change and its
precision and recall on the rows whose label has arrived, before enabling it. Rows
scored under another FeatureService (or before feature values were recorded) have no
``feature.*`` values: their rules on features do not match, and ``features_missing``
counts them. ``model.ae_score`` and ``model.clf_score`` are not recorded (missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from fraud_model.decisions import DECISIONS, RISK_LEVELS
from fraud_rules.dry_run import dry_run
from fraud_rules.engine import CompiledRuleSet, RuleInputs
from system_of_record.period import RecordedPeriod, read_period
from system_of_record.store import RecordStore

LEVEL_OF: dict[str, str] = {decision: level for level, decision in DECISIONS.items()}


@dataclass(frozen=True)
class DryRun:
    report: dict[str, Any]
    truncated: bool
    features_missing: int


def feature_matrix(
    period: RecordedPeriod, feature_names: Sequence[str], feature_service: str
) -> tuple[np.ndarray, int]:
    """The recorded feature values (n x features, NaN where not recorded) and how many
    rows had none usable."""
    n, width = len(period.transaction_id), len(feature_names)
    matrix = np.full((n, width), np.nan)
    missing = 0
    for i, (blob, service) in enumerate(zip(period.features, period.feature_service, strict=True)):
        if blob is None or service != feature_service or len(blob) != 4 * width:
            missing += 1
            continue
        matrix[i] = np.frombuffer(blob, dtype="<f4")
    return matrix, missing


def period_inputs(
    period: RecordedPeriod, feature_names: Sequence[str], feature_service: str
) -> tuple[RuleInputs, list[str], list[str], int]:
    """The rules' inputs over a recorded period, the model's own decisions and levels,
    and the rows without recorded features."""
    features, missing = feature_matrix(period, feature_names, feature_service)
    n = len(period.transaction_id)
    model_decisions = [m or d for m, d in zip(period.model_decision, period.decision, strict=True)]
    numeric: dict[str, Any] = {
        "request.amount": np.asarray(period.amount, dtype=np.float64),
        "request.distance_from_home_km": np.asarray(period.distance_from_home_km, dtype=np.float64),
        "request.is_foreign": np.asarray(period.is_foreign, dtype=np.float64),
        "model.score": np.asarray(period.fraud_probability, dtype=np.float64),
        "model.ae_score": np.full(n, np.nan),
        "model.clf_score": np.full(n, np.nan),
    }
    numeric.update({f"feature.{name}": features[:, j] for j, name in enumerate(feature_names)})
    levels = [LEVEL_OF.get(d, RISK_LEVELS[0]) for d in model_decisions]
    text: dict[str, Sequence[str | None]] = {
        "request.customer_id": period.customer_id,
        "request.terminal_id": period.terminal_id,
        "request.merchant_category": period.merchant_category,
        "request.channel": period.channel,
        "request.entry_mode": period.entry_mode,
        "model.decision": model_decisions,
        "model.risk_level": levels,
    }
    return RuleInputs(n=n, numeric=numeric, text=text), model_decisions, levels, missing


def run_dry_run(
    store: RecordStore,
    candidate: CompiledRuleSet,
    baseline: CompiledRuleSet | None,
    since: datetime,
    until: datetime,
    limit: int,
    feature_names: Sequence[str],
    feature_service: str,
) -> DryRun:
    """Read the period and compare ``candidate`` with ``baseline`` over it (blocking)."""
    period = read_period(store, since, until, limit)
    inputs, decisions, levels, missing = period_inputs(period, feature_names, feature_service)
    report = dry_run(candidate, baseline, inputs, decisions, levels, "model", period.label)
    return DryRun(report.to_dict(), period.truncated, missing)
