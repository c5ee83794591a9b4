"""The bundle as an MLflow pyfunc model, so ``mlflow.pyfunc.load_model`` scores it too
(logged by :func:`training.tracking.registry.log_model_version`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from fraud_model.bundle import load_bundle
from fraud_model.scorer import EnsembleScorer

BUNDLE_ARTIFACT = "bundle"


class FraudEnsembleModel(PythonModel):
    """Input: one column per bundle feature (NaN = missing). Output: the scores."""

    def load_context(self, context: Any) -> None:
        self.scorer = EnsembleScorer(load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT])))

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # No type hints: MLflow would derive a (wrong) signature from them.
        frame = pd.DataFrame(model_input)
        raw = frame.reindex(columns=list(self.scorer.features)).to_numpy(dtype=np.float64)
        batch = self.scorer.score(raw)
        return pd.DataFrame(
            {
                "fraud_probability": batch.probability,
                "risk_level": batch.risk_levels,
                "decision": batch.decisions,
                "ae_score": batch.ae_score,
                "clf_score": batch.clf_score,
            }
        )
