"""The answer encoding: a :class:`~app.services.predictor.Prediction` as the API's JSON
answer and as the answer columns of a scored CSV row.

:func:`answer` is one ``ScoreOut`` as plain data (the routes encode it with orjson; the
dashboard's what-if form answers the same shape). :data:`ANSWER_COLUMNS` and
:func:`answer_cells` are the columns the batch command (``python -m app.batch``) and the
dashboard's file upload add to each input row; a row that failed validation keeps them
empty and says why in ``error``.
"""

from __future__ import annotations

from typing import Any

from app.schemas.transactions import TransactionIn
from app.services.predictor import Prediction

ANSWER_COLUMNS = (
    "fraud_probability",
    "risk_level",
    "decision",
    "ae_score",
    "clf_score",
    "reasons",
    "decision_source",
    "rules_matched",
    "rule_set_version",
    "degraded",
    "model_version",
    "error",
)


def answer(transaction: TransactionIn, p: Prediction, version: str, ms: float) -> dict[str, Any]:
    """One ``ScoreOut`` as plain data (the field order of the model)."""
    return {
        "transaction_id": transaction.transaction_id,
        "fraud_probability": p.fraud_probability,
        "risk_level": p.risk_level,
        "decision": p.decision,
        "ae_score": p.ae_score,
        "clf_score": p.clf_score,
        "reasons": [
            {
                "code": r.code,
                "feature": r.feature,
                "source": r.source,
                "contribution": r.contribution,
                "value": r.value,
            }
            for r in p.reasons
        ],
        "model_version": version,
        "decision_source": p.decision_source,
        "rule_set_version": p.rule_set,
        "rules_matched": list(p.rules),
        "degraded": p.degraded,
        "latency_ms": ms,
    }


def answer_cells(p: Prediction, version: str) -> dict[str, Any]:
    """The answer columns of a scored row."""
    return {
        "fraud_probability": f"{p.fraud_probability:.6f}",
        "risk_level": p.risk_level,
        "decision": p.decision,
        "ae_score": "" if p.ae_score is None else f"{p.ae_score:.6f}",
        "clf_score": "" if p.clf_score is None else f"{p.clf_score:.6f}",
        "reasons": ";".join(r.code for r in p.reasons),
        "decision_source": p.decision_source,
        "rules_matched": ";".join(p.rules),
        "rule_set_version": p.rule_set,
        "degraded": ";".join(p.degraded),
        "model_version": version,
        "error": "",
    }


def unanswered_cells(error: str) -> dict[str, Any]:
    """The answer columns of a row that was not scored: empty, and why in ``error``."""
    return dict.fromkeys(ANSWER_COLUMNS, "") | {"error": error}
