"""Risk tiers on the calibrated probability, and the action each tier takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fraud_model.arrays import FloatArray

RiskLevel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
Decision = Literal["approve", "review", "step_up", "decline"]

RISK_LEVELS: tuple[RiskLevel, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
DECISIONS: dict[RiskLevel, Decision] = {
    "LOW": "approve",
    "MEDIUM": "review",
    "HIGH": "step_up",
    "CRITICAL": "decline",
}


@dataclass(frozen=True)
class Tiers:
    """Lower bounds of MEDIUM, HIGH and CRITICAL; a transaction at or above one enters it."""

    medium: float = 0.30
    high: float = 0.60
    critical: float = 0.85

    def __post_init__(self) -> None:
        if not 0.0 < self.medium <= self.high <= self.critical <= 1.0:
            raise ValueError(f"tiers must satisfy 0 < medium <= high <= critical <= 1: {self}")

    def level_index(self, probability: FloatArray) -> np.ndarray:
        """0 (LOW) to 3 (CRITICAL) for every probability."""
        edges = np.array([self.medium, self.high, self.critical])
        return np.searchsorted(edges, np.asarray(probability, dtype=np.float64), side="right")

    def levels(self, probability: FloatArray) -> list[RiskLevel]:
        return [RISK_LEVELS[i] for i in self.level_index(probability)]

    def to_dict(self) -> dict[str, float]:
        return {"medium": self.medium, "high": self.high, "critical": self.critical}
