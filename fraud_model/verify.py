"""Proof that a bundle can score, run wherever one is written or loaded.

A bundle's SHA-256 manifest proves its files are the ones written; it does not prove the
numbers in them can score. :func:`prove` checks every parameter (finite, in range, shapes
that agree with the feature list), the feature list itself, and then scores a fixed set of
probe rows through :class:`EnsembleScorer` and compares the scores with the ones
``write_bundle`` recorded in the manifest. A model file swapped for another valid model,
a reordered feature list or a corrupted weight changes those scores; float64 arithmetic on
another machine does not (beyond ``PROBE_TOLERANCE``).

The probe rows are stored in the manifest keyed by feature name and are put into columns
by the bundle's feature list, as the service assembles a request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fraud_model.arrays import FloatArray
from fraud_model.model import BundleError, ModelBundle
from fraud_model.scorer import EnsembleScorer

PROBE_ROWS = 24
PROBE_SEED = 22
# Recorded and rescored in float64 by the same code: only summation-order noise remains.
PROBE_TOLERANCE = 1e-6
PROBED = ("ae_score", "clf_margin", "probability")

ProbeRows = dict[str, list[float | None]]


def _finite(name: str, values: Any) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise BundleError(f"{name}: NaN or infinite values")
    return array


def _nondecreasing(name: str, values: FloatArray) -> None:
    if values.size < 2 or np.any(np.diff(values) < 0):
        raise BundleError(f"{name} must be at least two non-decreasing values")


def check_values(bundle: ModelBundle) -> None:
    """Refuse NaN or infinite parameters, out-of-range calibration or tiers, and shapes that
    disagree with the feature list; raises ``BundleError`` naming the first problem."""
    names, d = bundle.features, len(bundle.features)
    if d == 0 or len(set(names)) != d or not all(isinstance(n, str) and n for n in names):
        raise BundleError("the feature list must be non-empty, unique names")
    _finite("fill_values", bundle.fill_values)
    scaler = bundle.standardizer
    if _finite("standardizer mean", scaler.mean).shape != (d,):
        raise BundleError("standardizer mean width differs from the feature list")
    scale = _finite("standardizer scale", scaler.scale)
    if scale.shape != (d,) or np.any(scale <= 0):
        raise BundleError("standardizer scale must be positive, one per feature")
    for i, (w, b) in enumerate(
        zip(bundle.autoencoder.weights, bundle.autoencoder.biases, strict=True)
    ):
        _finite(f"autoencoder layer {i} weights", w)
        _finite(f"autoencoder layer {i} biases", b)
    _nondecreasing(
        "anomaly quantiles",
        _finite("anomaly quantiles", bundle.anomaly.log_error_quantiles),
    )
    booster_names = list(bundle.classifier.feature_name())
    if booster_names != [f"Column_{i}" for i in range(d)] and booster_names != list(names):
        raise BundleError("the classifier's feature names differ from the bundle's feature list")
    fusion = bundle.fusion
    _finite("ensemble", [fusion.ae_weight, fusion.coef_clf, fusion.coef_ae, fusion.intercept])
    _check_calibration(bundle)
    tiers = [bundle.tiers.medium, bundle.tiers.high, bundle.tiers.critical]
    _finite("tiers", tiers)
    if not 0.0 < tiers[0] <= tiers[1] <= tiers[2] <= 1.0:
        raise BundleError(f"tiers must satisfy 0 < medium <= high <= critical <= 1: {tiers}")


def _check_calibration(bundle: ModelBundle) -> None:
    calibrator = bundle.calibrator
    if calibrator.method == "platt":
        _finite("calibration", [calibrator.slope, calibrator.intercept])
        if calibrator.slope <= 0:
            raise BundleError("calibration slope must be positive (a monotone map)")
    elif calibrator.method == "isotonic":
        x = _finite("calibration breakpoints", calibrator.x)
        y = _finite("calibration values", calibrator.y)
        if x.shape != y.shape:
            raise BundleError("calibration breakpoints and values differ in length")
        _nondecreasing("calibration breakpoints", x)
        _nondecreasing("calibration values", y)
        if y[0] < 0.0 or y[-1] > 1.0:
            raise BundleError("calibration values must lie within [0, 1]")


def check_features(bundle: ModelBundle, expected: Sequence[str], source: str) -> None:
    """Refuse a feature list that is not ``expected`` (the FeatureService's), in order."""
    if tuple(bundle.features) == tuple(expected):
        return
    missing = sorted(set(bundle.features) - set(expected))
    detail = f"needs features not in it: {missing}" if missing else "differs in names or order"
    raise BundleError(f"the bundle's feature list differs from {source}'s: {detail}")


def make_probes(bundle: ModelBundle, rows: int = PROBE_ROWS) -> ProbeRows:
    """Deterministic probe rows from the bundle's own statistics: the new-entity row, an
    all-missing row, then rows spread around the standardiser's mean (up to about 4.5
    standard deviations, a tenth of the values missing), rounded to 6 digits."""
    d = len(bundle.features)
    rng = np.random.default_rng(PROBE_SEED)
    z = rng.normal(0.0, 1.5, size=(rows, d))
    squashed = np.clip(bundle.standardizer.mean + z * bundle.standardizer.scale, -30.0, 30.0)
    values = np.sign(squashed) * np.expm1(np.abs(squashed))  # inverse of the signed log
    values[0] = bundle.fill_values
    values[1] = np.nan
    values[2:][rng.random((rows - 2, d)) < 0.1] = np.nan
    return {
        name: [None if math.isnan(v) else float(f"{v:.6g}") for v in values[:, j].tolist()]
        for j, name in enumerate(bundle.features)
    }


def score_probes(
    bundle: ModelBundle, probes: Mapping[str, Sequence[float | None]]
) -> dict[str, list[float]]:
    """The probes' scores through the service's scorer, columns by the bundle's names."""
    absent = sorted(set(bundle.features) - set(probes))
    if absent or len(probes) != len(bundle.features):
        raise BundleError(f"the probe rows do not match the bundle's feature list: {absent}")
    try:
        raw = np.array(
            [[np.nan if v is None else float(v) for v in probes[n]] for n in bundle.features],
            dtype=np.float64,
        ).T
        scorer = EnsembleScorer(bundle)
        batch = scorer.score(raw)
        scorer.reasons(batch)
    except BundleError:
        raise
    except Exception as exc:  # anything the scorer trips on means it cannot serve
        raise BundleError(f"trial score failed: {exc!r}") from exc
    scores = {name: getattr(batch, name) for name in PROBED}
    for name, values in scores.items():
        _finite(f"trial score {name}", values)
    for name in ("ae_score", "probability"):
        if np.any((scores[name] < 0) | (scores[name] > 1)):
            raise BundleError(f"trial score {name} outside [0, 1]")
    return {name: values.tolist() for name, values in scores.items()}


def record_probes(bundle: ModelBundle) -> dict[str, Any]:
    """Probe rows and their scores, for the manifest (``write_bundle``)."""
    check_values(bundle)
    rows = make_probes(bundle)
    return {"rows": rows, "scores": score_probes(bundle, rows)}


UNPROBED = "values checked; no recorded probe scores: trial checked for finite scores only"


def proof_note(recorded: Any) -> str:
    """What :func:`prove` establishes for a manifest's ``probes`` record."""
    if recorded is None:
        return UNPROBED
    return "values checked; trial score matched the manifest's probe scores"


def prove(
    bundle: ModelBundle,
    recorded: Any,
    expected_features: Sequence[str] | None = None,
    feature_source: str = "the FeatureService",
    require_probes: bool = False,
) -> None:
    """Value checks, the feature list, and a trial score compared with ``recorded`` (the
    manifest's ``probes``); raises ``BundleError`` naming the first failure.

    Without recorded probes (a bundle written before trial scoring) the trial only checks
    that generated probes score finite and in range, unless ``require_probes``."""
    check_values(bundle)
    if expected_features is not None:
        check_features(bundle, expected_features, feature_source)
    if recorded is None:
        if require_probes:
            raise BundleError(
                "MANIFEST.json records no probe scores (written before trial scoring): "
                "re-export the bundle with the current training code"
            )
        score_probes(bundle, make_probes(bundle))
        return
    try:
        rows, expected = recorded["rows"], recorded["scores"]
        n = len(next(iter(rows.values())))
        want = {name: np.asarray(expected[name], dtype=np.float64) for name in PROBED}
    except (AttributeError, KeyError, TypeError, ValueError, StopIteration) as exc:
        raise BundleError("the manifest's probe record is malformed") from exc
    got = score_probes(bundle, rows)
    for name in PROBED:
        diff = np.abs(np.asarray(got[name]) - want[name]) if want[name].shape == (n,) else None
        if diff is None or not np.all(diff <= PROBE_TOLERANCE * (1.0 + np.abs(want[name]))):
            worst = "shape" if diff is None else f"{float(np.nanmax(diff)):.3g}"
            raise BundleError(
                f"trial score differs from the manifest's on the probe rows: {name} off by "
                f"{worst} (tolerance {PROBE_TOLERANCE:g}); the bundle is not what was written"
            )
