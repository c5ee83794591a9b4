"""The ensemble scorer: imputation, autoencoder, classifier, fusion, calibration, tiers.

Training evaluates a bundle through :class:`EnsembleScorer` and the service scores
requests through the same class, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.services.scoring.arrays import FloatArray
from app.services.scoring.bundle import ModelBundle
from app.services.scoring.decisions import DECISIONS, RISK_LEVELS, Decision, RiskLevel
from app.services.scoring.fusion import sigmoid

ReasonSource = Literal["classifier", "autoencoder", "rules"]
Stage = Callable[[str], AbstractContextManager[Any]]


def no_stage(name: str) -> AbstractContextManager[Any]:
    return nullcontext()


@dataclass(frozen=True)
class ScoreBatch:
    """Scores of n transactions; ``missing`` marks features that were imputed."""

    ae_score: FloatArray
    clf_score: FloatArray
    clf_margin: FloatArray
    ae_error: FloatArray  # mean squared reconstruction error
    fused: FloatArray
    probability: FloatArray
    level_index: np.ndarray
    feature_errors: FloatArray  # n x d squared reconstruction errors (standardised units)
    filled: FloatArray  # n x d model inputs after imputation
    missing: np.ndarray  # n x d bool

    @property
    def risk_levels(self) -> list[RiskLevel]:
        return [RISK_LEVELS[i] for i in self.level_index]

    @property
    def decisions(self) -> list[Decision]:
        return [DECISIONS[RISK_LEVELS[i]] for i in self.level_index]


@dataclass(frozen=True)
class Reason:
    """One reason code. ``contribution`` is in log-odds for the classifier and a share of
    the reconstruction error for the autoencoder."""

    code: str
    feature: str
    source: ReasonSource
    contribution: float
    value: float


class EnsembleScorer:
    """Scores raw feature matrices (columns in ``bundle.features`` order, NaN = missing)."""

    def __init__(self, bundle: ModelBundle, threads: int = 1) -> None:
        self.bundle = bundle
        self.threads = threads

    @property
    def features(self) -> tuple[str, ...]:
        return self.bundle.features

    def impute(self, raw: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """Replace missing or non-finite values by the bundle's new-entity defaults."""
        values = np.asarray(raw, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.features):
            raise ValueError(f"expected n x {len(self.features)} features, got {values.shape}")
        missing = ~np.isfinite(values)
        filled: FloatArray = np.where(missing, self.bundle.fill_values, values)
        return filled, missing

    def autoencoder_errors(self, filled: FloatArray) -> FloatArray:
        """Per-feature squared reconstruction errors in standardised units."""
        standardised = self.bundle.standardizer.transform(filled)
        reconstruction = self.bundle.autoencoder.reconstruct(standardised)
        errors: FloatArray = np.square(standardised - reconstruction)
        return errors

    def classifier_margin(self, filled: FloatArray) -> FloatArray:
        margin: FloatArray = np.asarray(
            self.bundle.classifier.predict(filled, raw_score=True, num_threads=self.threads),
            dtype=np.float64,
        )
        return margin

    def score(self, raw: FloatArray, stage: Stage = no_stage) -> ScoreBatch:
        """Every score for a batch of transactions; ``stage(name)`` wraps the autoencoder
        and the classifier (the service passes a tracing span)."""
        filled, missing = self.impute(raw)
        with stage("autoencoder"):
            feature_errors = self.autoencoder_errors(filled)
            mean_error = feature_errors.mean(axis=1, dtype=np.float64)
            ae_score = self.bundle.anomaly.score(mean_error)
        with stage("classifier"):
            margin = self.classifier_margin(filled)
        clf_score = sigmoid(margin)
        fused = self.bundle.fusion(ae_score, margin, mean_error)
        probability = self.bundle.calibrator(fused)
        return ScoreBatch(
            ae_score=ae_score,
            clf_score=clf_score,
            clf_margin=margin,
            ae_error=mean_error,
            fused=fused,
            probability=probability,
            level_index=self.bundle.tiers.level_index(probability),
            feature_errors=feature_errors,
            filled=filled,
            missing=missing,
        )

    def reasons(self, batch: ScoreBatch, top_k: int = 3) -> list[list[Reason]]:
        """Top reason codes per transaction: the features that pushed the classifier
        towards fraud most (TreeSHAP ``pred_contrib``) and the features the autoencoder
        reconstructed worst."""
        filled = batch.filled
        contrib = np.asarray(
            self.bundle.classifier.predict(filled, pred_contrib=True, num_threads=self.threads)
        )[:, :-1]  # the last column is the bias
        error_share = batch.feature_errors / np.maximum(
            batch.feature_errors.sum(axis=1, keepdims=True), 1e-12
        )
        out: list[list[Reason]] = []
        for i in range(filled.shape[0]):
            reasons = [
                Reason(
                    self.features[j].upper(),
                    self.features[j],
                    "classifier",
                    round(float(contrib[i, j]), 4),
                    float(filled[i, j]),
                )
                for j in np.argsort(-contrib[i])[:top_k]
                if contrib[i, j] > 0
            ]
            reasons += [
                Reason(
                    f"UNUSUAL_{self.features[j].upper()}",
                    self.features[j],
                    "autoencoder",
                    round(float(error_share[i, j]), 4),
                    float(filled[i, j]),
                )
                for j in np.argsort(-error_share[i])[:top_k]
                if batch.ae_score[i] >= 0.9 and error_share[i, j] >= 0.1
            ]
            out.append(reasons)
        return out
