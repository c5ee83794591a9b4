"""The model bundle: one directory the service loads without TensorFlow.

Layout::

    bundle.json        features, imputation, standardiser, score normaliser, ensemble
                       weight, calibrator, tiers, metadata (data version, metrics, cost model)
    autoencoder.npz    dense layer weights and biases exported from Keras
    classifier.txt     the LightGBM model
    MANIFEST.json      SHA-256 of each file above; the loader refuses any mismatch

The bundle's version is the first 12 hex digits of the SHA-256 of its manifest, so two
bundles with the same version hold the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from app.services.scoring.arrays import FloatArray
from app.services.scoring.autoencoder import AnomalyNormalizer, DenseAutoencoder, Standardizer
from app.services.scoring.calibration import Calibrator
from app.services.scoring.decisions import Tiers
from app.services.scoring.fusion import Fusion

FORMAT_VERSION = 1
SPEC_FILE = "bundle.json"
AUTOENCODER_FILE = "autoencoder.npz"
CLASSIFIER_FILE = "classifier.txt"
MANIFEST_FILE = "MANIFEST.json"
CONTENT_FILES = (SPEC_FILE, AUTOENCODER_FILE, CLASSIFIER_FILE)


class BundleError(Exception):
    """The bundle is missing, incomplete, tampered with, or of an unknown format."""


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

    def __post_init__(self) -> None:
        d = len(self.features)
        if self.autoencoder.n_features != d or self.fill_values.shape != (d,):
            raise BundleError("autoencoder or imputation width differs from the feature list")
        if self.classifier.num_feature() != d:
            raise BundleError("classifier width differs from the feature list")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(bundle: ModelBundle) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "features": list(bundle.features),
        "fill_values": bundle.fill_values.tolist(),
        "standardizer": {
            "mean": bundle.standardizer.mean.tolist(),
            "scale": bundle.standardizer.scale.tolist(),
        },
        "autoencoder": {"activations": list(bundle.autoencoder.activations)},
        "anomaly": {"log_error_quantiles": bundle.anomaly.log_error_quantiles.tolist()},
        "ensemble": bundle.fusion.to_dict(),
        "calibration": bundle.calibrator.to_dict(),
        "tiers": bundle.tiers.to_dict(),
        "metadata": bundle.metadata,
    }


def write_bundle(bundle: ModelBundle, directory: Path) -> str:
    """Write ``bundle`` to ``directory`` (replacing its files); returns the version."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SPEC_FILE).write_text(json.dumps(_spec(bundle), indent=1, sort_keys=True) + "\n")
    arrays: dict[str, FloatArray] = {}
    for i, (w, b) in enumerate(
        zip(bundle.autoencoder.weights, bundle.autoencoder.biases, strict=True)
    ):
        arrays[f"w{i}"] = np.asarray(w, dtype=np.float32)
        arrays[f"b{i}"] = np.asarray(b, dtype=np.float32)
    with (directory / AUTOENCODER_FILE).open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    (directory / CLASSIFIER_FILE).write_text(bundle.classifier.model_to_string())
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {name: _sha256(directory / name) for name in CONTENT_FILES},
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return _version(directory)


def _version(directory: Path) -> str:
    return _sha256(directory / MANIFEST_FILE)[:12]


def verify_bundle(directory: Path) -> dict[str, Any]:
    """Check every file against the manifest; returns the parsed manifest."""
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"no {MANIFEST_FILE} in {directory}")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"unreadable manifest in {directory}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"unsupported bundle format {manifest.get('format_version')!r}")
    missing = [name for name in CONTENT_FILES if name not in files]
    if missing:
        raise BundleError(f"manifest does not cover {missing}")
    for name in CONTENT_FILES:
        path = directory / name
        if not path.is_file():
            raise BundleError(f"bundle file {name} is missing")
        if _sha256(path) != files[name]:
            raise BundleError(f"bundle file {name} does not match its SHA-256 in the manifest")
    return manifest


def load_bundle(directory: Path) -> ModelBundle:
    """Verify and load a bundle directory; raises ``BundleError`` on any problem."""
    verify_bundle(directory)
    try:
        spec = json.loads((directory / SPEC_FILE).read_text())
        with np.load(directory / AUTOENCODER_FILE, allow_pickle=False) as npz:
            n_layers = len(spec["autoencoder"]["activations"])
            weights = tuple(npz[f"w{i}"] for i in range(n_layers))
            biases = tuple(npz[f"b{i}"] for i in range(n_layers))
        autoencoder = DenseAutoencoder(weights, biases, tuple(spec["autoencoder"]["activations"]))
        classifier = lgb.Booster(model_str=(directory / CLASSIFIER_FILE).read_text())
        bundle = ModelBundle(
            features=tuple(spec["features"]),
            fill_values=np.asarray(spec["fill_values"], dtype=np.float64),
            standardizer=Standardizer(
                np.asarray(spec["standardizer"]["mean"], dtype=np.float64),
                np.asarray(spec["standardizer"]["scale"], dtype=np.float64),
            ),
            autoencoder=autoencoder,
            anomaly=AnomalyNormalizer(
                np.asarray(spec["anomaly"]["log_error_quantiles"], dtype=np.float64)
            ),
            classifier=classifier,
            fusion=Fusion(**spec["ensemble"]),
            calibrator=Calibrator.from_dict(spec["calibration"]),
            tiers=Tiers(**spec["tiers"]),
            metadata=spec.get("metadata", {}),
        )
    except BundleError:
        raise
    except Exception as exc:  # a verified but malformed bundle: refuse it, say why
        raise BundleError(f"bundle in {directory} cannot be loaded: {exc}") from exc
    return replace(bundle, version=_version(directory))
