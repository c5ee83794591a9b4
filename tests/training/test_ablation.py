"""The evaluate stage's ablation on the tiny bundle: the kept model, the classifier member
alone and the autoencoder alone, each equal to AUPRC and ROC-AUC computed independently
from the service scorer's outputs."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_model.scorer import EnsembleScorer
from training.evaluate import ablation


def test_the_ablation_equals_independent_metrics(tiny_trained: Any) -> None:
    result, parts, _ = tiny_trained
    test = parts["test"]
    scorer = EnsembleScorer(result.bundle, 1)
    batch = scorer.score(test.x)
    found = ablation(test.y, batch)
    scores = {
        "kept": batch.probability,
        "classifier_only": batch.clf_margin,
        "autoencoder_only": batch.ae_score,
    }
    for name, score in scores.items():
        assert found[name]["auprc"] == pytest.approx(
            average_precision_score(test.y, score), abs=1e-5
        )
        assert found[name]["roc_auc"] == pytest.approx(roc_auc_score(test.y, score), abs=1e-5)
    # The autoencoder alone ranks differently from the classifier: the columns are distinct.
    assert found["autoencoder_only"]["auprc"] != found["classifier_only"]["auprc"]
    for metric in ("auprc", "roc_auc"):
        assert found["gain_over_classifier"][metric] == pytest.approx(
            found["kept"][metric] - found["classifier_only"][metric], abs=2e-5
        )
