"""Calibration of the fused score into a probability (isotonic or Platt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fraud_model.arrays import FloatArray

CalibrationMethod = Literal["isotonic", "platt", "identity"]

# Isotonic regression is flat between its breakpoints; ties would throw away the ranking
# the ensemble learned. Mixing in a sliver of the raw score keeps the map strictly
# increasing (same ranking, same AUPRC) and moves a probability by at most this much.
TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """Monotone map from fused score to probability, fitted on validation."""

    method: CalibrationMethod
    x: FloatArray  # isotonic breakpoints (fused score)
    y: FloatArray  # isotonic values (probability)
    slope: float = 1.0  # Platt: sigmoid(slope * logit(score) + intercept)
    intercept: float = 0.0

    def __call__(self, scores: FloatArray) -> FloatArray:
        s = np.minimum(np.maximum(np.asarray(scores, dtype=np.float64), 0.0), 1.0)
        if self.method == "identity":
            return s
        if self.method == "platt":
            logit = np.log(np.clip(s, 1e-9, 1 - 1e-9) / np.clip(1 - s, 1e-9, 1.0))
            out: FloatArray = 1.0 / (1.0 + np.exp(-(self.slope * logit + self.intercept)))
            return out
        mapped = np.interp(s, self.x, self.y)
        blended: FloatArray = (1.0 - TIE_BREAK) * mapped + TIE_BREAK * s
        return np.minimum(np.maximum(blended, 0.0, out=blended), 1.0, out=blended)

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "slope": self.slope,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, spec: dict[str, object]) -> Calibrator:
        method = spec["method"]
        if method not in ("isotonic", "platt", "identity"):
            raise ValueError(f"unknown calibration method {method!r}")
        x = np.asarray(spec.get("x", []), dtype=np.float64)
        y = np.asarray(spec.get("y", []), dtype=np.float64)
        if method == "isotonic" and (x.size < 2 or x.size != y.size or np.any(np.diff(x) < 0)):
            raise ValueError("isotonic calibration needs increasing breakpoints")
        return cls(
            method=method,
            x=x,
            y=y,
            slope=float(spec.get("slope", 1.0)),  # type: ignore[arg-type]
            intercept=float(spec.get("intercept", 0.0)),  # type: ignore[arg-type]
        )
