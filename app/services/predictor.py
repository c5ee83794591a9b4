"""Scores assembled feature rows with the ensemble, or with the rules when there is no model.

Both paths return the same :class:`Prediction`, so the API, the batch command and the
metrics never need to know which one ran beyond ``decision_source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.services.feature_rows import FeatureRows
from app.services.rules import score_rules
from fraud_model.bundle import ModelBundle
from fraud_model.decisions import DECISIONS, RISK_LEVELS, Decision, RiskLevel
from fraud_model.forest import ReasonMethod
from fraud_model.scorer import EnsembleScorer, Reason, Stage, no_stage

DecisionSource = Literal["model", "rules_fallback"]
RULES_VERSION = "rules-v1"


@dataclass(frozen=True)
class Prediction:
    """The answer for one transaction, before it becomes JSON."""

    fraud_probability: float
    risk_level: RiskLevel
    decision: Decision
    ae_score: float | None
    clf_score: float | None
    reasons: list[Reason]
    decision_source: DecisionSource
    degraded: list[str]


class Predictor:
    """Ensemble scoring with reason codes; interpretable rules when ``bundle`` is None."""

    def __init__(
        self, bundle: ModelBundle | None, top_k: int = 3, reason_method: ReasonMethod = "path"
    ) -> None:
        self.scorer = EnsembleScorer(bundle, 1, reason_method) if bundle is not None else None
        self.top_k = top_k

    @property
    def version(self) -> str:
        return self.scorer.bundle.version if self.scorer is not None else RULES_VERSION

    @property
    def source(self) -> DecisionSource:
        return "model" if self.scorer is not None else "rules_fallback"

    def predict(self, rows: FeatureRows, stage: Stage = no_stage) -> list[Prediction]:
        """One prediction per row of ``rows``; ``stage(name)`` wraps each model stage."""
        if self.scorer is None:
            with stage("rules"):
                return self._rules(rows)
        raw = rows.matrix(self.scorer.features)
        batch = self.scorer.score(raw, stage)
        with stage("explanation"):
            reasons = self.scorer.reasons(batch, self.top_k)
        return [
            Prediction(
                fraud_probability=float(batch.probability[i]),
                risk_level=RISK_LEVELS[level],
                decision=DECISIONS[RISK_LEVELS[level]],
                ae_score=float(batch.ae_score[i]),
                clf_score=float(batch.clf_score[i]),
                reasons=reasons[i],
                decision_source="model",
                degraded=rows.degraded[i],
            )
            for i, level in enumerate(batch.level_index)
        ]

    def _rules(self, rows: FeatureRows) -> list[Prediction]:
        scores = score_rules(rows.columns)
        out = []
        for i, level in enumerate(scores.level_index):
            reasons = [
                Reason(
                    rule.code,
                    rule.feature,
                    "rules",
                    rule.weight,
                    float(np.nan_to_num(rows.columns[rule.feature][i])),
                )
                for rule in sorted(scores.fired[i], key=lambda r: -r.weight)
            ]
            out.append(
                Prediction(
                    fraud_probability=float(scores.probability[i]),
                    risk_level=RISK_LEVELS[level],
                    decision=DECISIONS[RISK_LEVELS[level]],
                    ae_score=None,
                    clf_score=None,
                    reasons=reasons[: self.top_k],
                    decision_source="rules_fallback",
                    degraded=rows.degraded[i],
                )
            )
        return out
