"""Every test metric of a bundle on one frame, scored by the service's scorer: ranking,
alerts at the bundle's tiers, precision and recall within the daily alert budget, cost,
calibration, and recall by fraud scenario, with the PR, ROC and calibration curves.

The ``evaluate`` stage reports it on v0's test part and on v1; ``training.external`` on a
public data set's time-later part. Stages import this module; it imports no stage.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from fraud_model.fusion import Fusion
from fraud_model.scorer import EnsembleScorer, ScoreBatch
from training.inputs.frames import Frame
from training.modelling import metrics as m
from training.modelling.decision import CostModel, decision_cost


def evaluate_frame(
    scorer: EnsembleScorer, frame: Frame, k: int, bins: int, batch: ScoreBatch | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every test metric of a bundle on one frame (``batch``: its scores, when the caller
    has them already), and its curves."""
    if batch is None:
        batch = scorer.score(frame.x)
    y, prob = frame.y, batch.probability
    days = frame.days
    amount = frame.meta["amount"].to_numpy(dtype=np.float64)
    cost_model = CostModel(**scorer.bundle.metadata.get("cost_model", {}))
    alert = batch.level_index >= 1
    cost = decision_cost(batch.level_index, y, amount, cost_model)
    approve_all = float(amount[y == 1].sum())
    scenario = frame.meta["fraud_scenario"].to_numpy() if "fraud_scenario" in frame.meta else None
    values: dict[str, Any] = {
        "rows": len(frame),
        "fraud": int(y.sum()),
        "days": frame.n_days,
        **m.ranking(y, prob),
        "members": {
            "ae_auprc": m.ranking(y, batch.ae_score)["auprc"],
            "classifier_auprc": m.ranking(y, batch.clf_score)["auprc"],
        },
        **m.at_threshold(y, alert),
        "alerts_per_day": float(alert.sum() / frame.n_days),
        "k": k,
        "precision_at_k": m.precision_at_k(y, prob, days, k),
        "card_precision_at_k": m.card_precision_at_k(
            y, prob, days, frame.meta["customer_id"].to_numpy(), k
        ),
        "recall_at_k": m.recall_at_budget(y, prob, days, k),
        "cost": cost,
        "approve_all_cost": approve_all,
        "cost_saving": 1.0 - cost / approve_all if approve_all else 0.0,
        "brier": m.brier(y, prob),
        "brier_uncalibrated": m.brier(y, batch.fused),
        "ece": m.expected_calibration_error(y, prob, bins),
        "ece_uncalibrated": m.expected_calibration_error(y, batch.fused, bins),
        # The default fusion read as a probability, for scale.
        "ece_default_fusion": m.expected_calibration_error(
            y,
            Fusion("weighted", ae_weight=0.4)(batch.ae_score, batch.clf_margin, batch.ae_error),
            bins,
        ),
        "decisions": dict(sorted(Counter(batch.decisions).items())),
    }
    if scenario is not None:
        values["recall_by_scenario"] = {
            str(s): float(alert[(scenario == s) & (y == 1)].mean())
            for s in sorted(set(scenario[y == 1]))
        }
    curves = {
        **m.curve_points(y, prob),
        "calibration": m.calibration_curve(y, prob, bins),
    }
    return m.rounded(values), curves
