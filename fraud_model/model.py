"""The model bundle in memory, and the error every refusal of one raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lightgbm as lgb

from fraud_model.arrays import FloatArray
from fraud_model.autoencoder import AnomalyNormalizer, DenseAutoencoder, Standardizer
from fraud_model.calibration import Calibrator
from fraud_model.decisions import Tiers
from fraud_model.forest import ForestTables, compile_tables
from fraud_model.fusion import Fusion


class BundleError(Exception):
    """The bundle is missing, incomplete, tampered with, of an unknown format, or cannot
    score (a failed value check or trial score)."""


@dataclass(frozen=True)
class ModelBundle:
    """Everything the scorer needs, in memory."""

    features: tuple[str, ...]
    fill_values: FloatArray  # imputed for a missing feature (a new customer or terminal)
    standardizer: Standardizer
    autoencoder: DenseAutoencoder
    anomaly: AnomalyNormalizer
    classifier: lgb.Booster
    fusion: Fusion
    calibrator: Calibrator
    tiers: Tiers
    metadata: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    proof: str = ""  # what loading proved (fraud_model.verify.prove)

    def __post_init__(self) -> None:
        d = len(self.features)
        if self.autoencoder.n_features != d or self.fill_values.shape != (d,):
            raise BundleError("autoencoder or imputation width differs from the feature list")
        if self.classifier.num_feature() != d:
            raise BundleError("classifier width differs from the feature list")

    @cached_property
    def forest_tables(self) -> ForestTables:
        """The classifier's serving tables, compiled once per bundle: the trial score at
        load and the predictor that then serves it share them."""
        return compile_tables(self.classifier)
