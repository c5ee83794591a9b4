"""The ensemble scorer: imputation, autoencoder, classifier, fusion, calibration, tiers.

Training evaluates a bundle through :class:`EnsembleScorer` and the service scores
requests through the same class, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from fraud_model.arrays import FloatArray
from fraud_model.decisions import DECISIONS, RISK_LEVELS, Decision, RiskLevel
from fraud_model.forest import CompiledForest, ReasonMethod
from fraud_model.fusion import sigmoid
from fraud_model.model import ModelBundle

ReasonSource = Literal["classifier", "autoencoder", "rules", "rule"]
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
    leaf_ids: np.ndarray  # n x trees: the classifier's reached leaves (global ids)

    @property
    def risk_levels(self) -> list[RiskLevel]:
        return [RISK_LEVELS[i] for i in self.level_index]

    @property
    def decisions(self) -> list[Decision]:
        return [DECISIONS[RISK_LEVELS[i]] for i in self.level_index]


class Reason(NamedTuple):
    """One reason code. ``contribution`` is in log-odds for the classifier and a share of
    the reconstruction error for the autoencoder."""

    code: str
    feature: str
    source: ReasonSource
    contribution: float
    value: float


class EnsembleScorer:
    """Scores raw feature matrices (columns in ``bundle.features`` order, NaN = missing).

    ``reason_method`` picks the classifier's reason codes: ``path`` (path attribution from
    precomputed per-leaf tables, microseconds) or ``treeshap`` (exact Shapley values from
    LightGBM's ``pred_contrib``, about a millisecond per transaction); see
    :mod:`fraud_model.forest`.
    """

    def __init__(
        self, bundle: ModelBundle, threads: int = 1, reason_method: ReasonMethod = "path"
    ) -> None:
        if reason_method not in ("path", "treeshap"):
            raise ValueError(f"unknown reason method {reason_method!r}")
        self.bundle = bundle
        self.threads = threads
        self.reason_method = reason_method
        self.forest = CompiledForest(bundle.classifier, threads, bundle.forest_tables)
        self._upper = tuple(name.upper() for name in bundle.features)

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
        reconstruction -= standardised
        errors: FloatArray = np.square(reconstruction, out=reconstruction)
        return errors

    def classifier_margin(self, filled: FloatArray) -> FloatArray:
        """The classifier's raw score (log-odds), equal to ``predict(raw_score=True)``."""
        return self.forest.margin(self.forest.global_leaves(self.forest.leaves(filled)))

    def score(self, raw: FloatArray, stage: Stage = no_stage) -> ScoreBatch:
        """Every score for a batch of transactions; ``stage(name)`` wraps the autoencoder,
        the classifier and the calibration (the service passes a tracing span)."""
        filled, missing = self.impute(raw)
        with stage("autoencoder"):
            feature_errors = self.autoencoder_errors(filled)
            mean_error = feature_errors.mean(axis=1, dtype=np.float64)
            ae_score = self.bundle.anomaly.score(mean_error)
        with stage("classifier"):
            leaf_ids = self.forest.global_leaves(self.forest.leaves(filled))
            margin = self.forest.margin(leaf_ids)
        with stage("calibration"):
            fused = self.bundle.fusion(ae_score, margin, mean_error)
            probability = self.bundle.calibrator(fused)
            level_index = self.bundle.tiers.level_index(probability)
        return ScoreBatch(
            ae_score=ae_score,
            clf_score=sigmoid(margin),
            clf_margin=margin,
            ae_error=mean_error,
            fused=fused,
            probability=probability,
            level_index=level_index,
            feature_errors=feature_errors,
            filled=filled,
            missing=missing,
            leaf_ids=leaf_ids,
        )

    def contributions(self, batch: ScoreBatch) -> FloatArray:
        """The classifier's per-feature log-odds contributions (n x d) by ``reason_method``."""
        if self.reason_method == "treeshap":
            return self.forest.treeshap(batch.filled)
        return self.forest.contributions(batch.leaf_ids)

    def reasons(self, batch: ScoreBatch, top_k: int = 3) -> list[list[Reason]]:
        """Top reason codes per transaction: the (at most ``top_k``) features that pushed the
        classifier towards fraud most, then, for anomalous transactions (autoencoder score
        at least 0.9), the features it reconstructed worst (at least 10 % of the error)."""
        n = batch.filled.shape[0]
        if top_k == 0 or n == 0:
            return [[] for _ in range(n)]
        k = min(top_k, len(self.features))
        names, upper = self.features, self._upper
        contributions = self.contributions(batch)
        top = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
        # only the k chosen values of each row become Python floats, not all d
        top_contrib = np.take_along_axis(contributions, top, axis=1).tolist()
        top_value = np.take_along_axis(batch.filled, top, axis=1).tolist()
        out: list[list[Reason]] = []
        for order, contrib, value in zip(top.tolist(), top_contrib, top_value, strict=True):
            out.append(
                [
                    Reason(upper[j], names[j], "classifier", round(c, 4), v)
                    for j, c, v in zip(order, contrib, value, strict=True)
                    if c > 0
                ]
            )
        for i in np.flatnonzero(batch.ae_score >= 0.9).tolist():
            errors = batch.feature_errors[i]
            share = (errors / max(float(errors.sum()), 1e-12)).tolist()
            out[i] += [
                Reason(
                    f"UNUSUAL_{upper[j]}",
                    names[j],
                    "autoencoder",
                    round(share[j], 4),
                    float(batch.filled[i, j]),
                )
                for j in _top_k(share, k)
                if share[j] >= 0.1
            ]
        return out


def _top_k(values: list[float], k: int) -> list[int]:
    """Indices of the ``k`` largest values, largest first (ties: the lower index first)."""
    return sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]
