"""Scores assembled feature rows with the ensemble, or with the rules when there is no model,
then applies the analysts' rule set (:mod:`app.services.rulebook`).

Both paths return the same :class:`Prediction`, so the API, the batch command and the
metrics never need to know which one ran beyond ``decision_source``: ``model``,
``rules_fallback`` (no model), or ``rule`` (a rule of the rule set changed the decision;
``model_decision`` keeps what the model alone decided).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from app.services.feature_rows import FeatureRows
from app.services.rulebook import Rulebook
from app.services.rules import score_rules
from fraud_model.arrays import FloatArray
from fraud_model.bundle import ModelBundle
from fraud_model.decisions import DECISIONS, RISK_LEVELS, Decision, RiskLevel
from fraud_model.forest import ReasonMethod
from fraud_model.scorer import EnsembleScorer, Reason, Stage, no_stage
from fraud_rules.engine import CompiledRuleSet, RuleInputs, RuleOutcome

DecisionSource = Literal["model", "rule", "rules_fallback"]
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
    model_decision: Decision | None = None  # before the rule set; None: equal to decision
    rules: tuple[str, ...] = ()  # the rule set's rules that matched, in file order
    rule_set: str = ""  # the rule set's version ("" without one)
    features: bytes | None = None  # the FeatureService's values, float32 (the audit record)


@dataclass(frozen=True)
class _ModelAnswers:
    """What the model (or the fallback) said for each row, before the rule set."""

    probability: list[float]
    level_index: list[int]
    ae_score: list[float] | None
    clf_score: list[float] | None
    reasons: list[list[Reason]]
    source: DecisionSource


class Predictor:
    """Ensemble scoring with reason codes (interpretable rules when ``bundle`` is None),
    then the rule set of ``rulebook``; ``feature_names`` orders the audit record's
    feature values (the FeatureService's list; the bundle's when not given)."""

    def __init__(
        self,
        bundle: ModelBundle | None,
        top_k: int = 3,
        reason_method: ReasonMethod = "path",
        rulebook: Rulebook | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.scorer = EnsembleScorer(bundle, 1, reason_method) if bundle is not None else None
        self.top_k = top_k
        self.rulebook = rulebook
        names = feature_names or (bundle.features if bundle is not None else ())
        self.feature_names: tuple[str, ...] = tuple(names)
        self._read: tuple[CompiledRuleSet, frozenset[str]] | None = None

    @property
    def version(self) -> str:
        return self.scorer.bundle.version if self.scorer is not None else RULES_VERSION

    @property
    def source(self) -> Literal["model", "rules_fallback"]:
        return "model" if self.scorer is not None else "rules_fallback"

    def predict(self, rows: FeatureRows, stage: Stage = no_stage) -> list[Prediction]:
        """One prediction per row of ``rows``; ``stage(name)`` wraps each model stage."""
        raw = rows.matrix(self.feature_names) if self.feature_names else None
        if self.scorer is None:
            with stage("rules"):
                answers = self._fallback(rows)
        else:
            model_raw = raw if self.scorer.features == self.feature_names else None
            answers = self._model(rows, stage, model_raw)
        features = _encoded(raw, len(rows.degraded))
        rule_set = self.rulebook.active if self.rulebook is not None else None
        if rule_set is None:
            return self._answers(rows, answers, features)
        with stage("rule_set"):
            outcomes = rule_set.decide(
                rule_inputs(rows, answers, self._fields(rule_set)),
                [DECISIONS[RISK_LEVELS[i]] for i in answers.level_index],
                [RISK_LEVELS[i] for i in answers.level_index],
                answers.source,
            )
        return self._answers(rows, answers, features, outcomes, rule_set.label)

    def _fields(self, rule_set: CompiledRuleSet) -> frozenset[str]:
        """The fields the enabled rules read (kept per rule set: it is swapped whole)."""
        if self._read is None or self._read[0] is not rule_set:
            fields = frozenset(f for r in rule_set.rules if r.enabled for f in r.fields)
            self._read = (rule_set, fields)
        return self._read[1]

    def _model(self, rows: FeatureRows, stage: Stage, raw: FloatArray | None) -> _ModelAnswers:
        assert self.scorer is not None
        batch = self.scorer.score(rows.matrix(self.scorer.features) if raw is None else raw, stage)
        with stage("explanation"):
            reasons = self.scorer.reasons(batch, self.top_k)
        return _ModelAnswers(
            batch.probability.tolist(),
            batch.level_index.tolist(),
            batch.ae_score.tolist(),
            batch.clf_score.tolist(),
            reasons,
            "model",
        )

    def _fallback(self, rows: FeatureRows) -> _ModelAnswers:
        scores = score_rules(rows.columns)
        reasons = [
            [
                Reason(
                    rule.code,
                    rule.feature,
                    "rules",
                    rule.weight,
                    float(np.nan_to_num(rows.columns[rule.feature][i])),
                )
                for rule in sorted(fired, key=lambda r: -r.weight)
            ][: self.top_k]
            for i, fired in enumerate(scores.fired)
        ]
        return _ModelAnswers(
            scores.probability.tolist(),
            scores.level_index.tolist(),
            None,
            None,
            reasons,
            "rules_fallback",
        )

    def _answers(
        self,
        rows: FeatureRows,
        answers: _ModelAnswers,
        features: list[bytes | None],
        outcomes: Sequence[RuleOutcome | None] | None = None,
        rule_set: str = "",
    ) -> list[Prediction]:
        out = []
        for i, level in enumerate(answers.level_index):
            risk = RISK_LEVELS[level]
            decision = DECISIONS[risk]
            prediction = Prediction(
                fraud_probability=answers.probability[i],
                risk_level=risk,
                decision=decision,
                ae_score=answers.ae_score[i] if answers.ae_score is not None else None,
                clf_score=answers.clf_score[i] if answers.clf_score is not None else None,
                reasons=answers.reasons[i],
                decision_source=answers.source,
                degraded=rows.degraded[i],
                model_decision=decision,
                rule_set=rule_set,
                features=features[i],
            )
            outcome = outcomes[i] if outcomes is not None else None
            if outcome is not None and outcome.matched:
                prediction = _ruled(prediction, outcome)
            out.append(prediction)
        return out


def _ruled(prediction: Prediction, outcome: RuleOutcome) -> Prediction:
    """``prediction`` as the rule set's outcome leaves it."""
    return replace(
        prediction,
        risk_level=outcome.risk_level,
        decision=outcome.decision,
        decision_source=cast(DecisionSource, outcome.decision_source),
        reasons=[
            *prediction.reasons,
            *(Reason(code, rule, "rule", 0.0, 0.0) for code, rule in outcome.reasons),
        ],
        rules=outcome.matched,
    )


def _encoded(raw: FloatArray | None, n: int) -> list[bytes | None]:
    """Each row's feature values as float32 little-endian bytes (the audit record's)."""
    if raw is None:
        return [None] * n
    values = np.ascontiguousarray(raw, dtype="<f4")
    return [row.tobytes() for row in values]


def rule_inputs(rows: FeatureRows, answers: _ModelAnswers, fields: frozenset[str]) -> RuleInputs:
    """The fields the rule set reads: the request's, the features' and the model's."""
    n = len(rows.degraded)
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    text: dict[str, Sequence[str | None]] = {}
    for name in fields:
        if name.startswith("request."):
            values = rows.request.get(name)
            if isinstance(values, np.ndarray):
                numeric[name] = values
            elif values is not None:
                text[name] = values
        elif name.startswith("feature."):
            column = rows.columns.get(name.removeprefix("feature."))
            if column is not None:
                numeric[name] = np.asarray(column, dtype=np.float64)
        elif name == "model.score":
            numeric[name] = np.asarray(answers.probability, dtype=np.float64)
        elif name in ("model.ae_score", "model.clf_score"):
            scores = answers.ae_score if name == "model.ae_score" else answers.clf_score
            numeric[name] = np.asarray(scores if scores is not None else [np.nan] * n, np.float64)
        elif name == "model.risk_level":
            text[name] = [RISK_LEVELS[i] for i in answers.level_index]
        elif name == "model.decision":
            text[name] = [DECISIONS[RISK_LEVELS[i]] for i in answers.level_index]
    return RuleInputs(n=n, numeric=numeric, text=text)
