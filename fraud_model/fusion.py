"""How the two members' scores become one: a weighted average or a stacking model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import expit

from fraud_model.arrays import FloatArray

FusionMethod = Literal["weighted", "stacking"]


def sigmoid(margin: FloatArray) -> FloatArray:
    """Logistic function, overflow-safe."""
    out: FloatArray = expit(np.asarray(margin, dtype=np.float64))
    return out


@dataclass(frozen=True)
class Fusion:
    """``weighted``: ``ae_weight * ae_score + (1 - ae_weight) * clf_probability``.

    ``stacking``: a logistic regression on the classifier's log-odds and the autoencoder's
    log reconstruction error, ``sigmoid(coef_clf * margin + coef_ae * log(error) +
    intercept)``; in log-odds space the autoencoder can move a borderline case without
    swamping confident ones.
    """

    method: FusionMethod = "weighted"
    ae_weight: float = 0.4
    coef_clf: float = 1.0
    coef_ae: float = 0.0
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ("weighted", "stacking"):
            raise ValueError(f"unknown fusion method {self.method!r}")
        if not 0.0 <= self.ae_weight <= 1.0:
            raise ValueError("ae_weight must be within [0, 1]")

    def __call__(
        self, ae_score: FloatArray, clf_margin: FloatArray, ae_error: FloatArray
    ) -> FloatArray:
        if self.method == "weighted":
            fused: FloatArray = self.ae_weight * ae_score + (1.0 - self.ae_weight) * sigmoid(
                clf_margin
            )
            return fused
        return sigmoid(
            self.coef_clf * clf_margin + self.coef_ae * np.log(ae_error + 1e-12) + self.intercept
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "ae_weight": self.ae_weight,
            "coef_clf": self.coef_clf,
            "coef_ae": self.coef_ae,
            "intercept": self.intercept,
        }
