"""The model bundle: one directory the service loads without TensorFlow.

Layout::

    bundle.json        features, imputation, standardiser, score normaliser, ensemble
                       weight, calibrator, tiers, metadata (data version, metrics, cost model)
    autoencoder.npz    dense layer weights and biases exported from Keras
    classifier.txt     the LightGBM model
    MANIFEST.json      SHA-256 of each file above (the loader refuses any mismatch), and
                       probe rows with the scores this bundle gave them when written
                       (the loader rescores them: fraud_model.verify)

The bundle's version is the first 12 hex digits of the SHA-256 of its manifest, so two
bundles with the same version hold the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from fraud_model.arrays import FloatArray
from fraud_model.autoencoder import AnomalyNormalizer, DenseAutoencoder, Standardizer
from fraud_model.calibration import Calibrator
from fraud_model.decisions import Tiers
from fraud_model.fusion import Fusion
from fraud_model.model import BundleError, ModelBundle
from fraud_model.verify import check_values, proof_note, prove, record_probes

__all__ = ["BundleError", "ModelBundle", "load_bundle", "verify_bundle", "write_bundle"]

FORMAT_VERSION = 1
SPEC_FILE = "bundle.json"
AUTOENCODER_FILE = "autoencoder.npz"
CLASSIFIER_FILE = "classifier.txt"
MANIFEST_FILE = "MANIFEST.json"
CONTENT_FILES = (SPEC_FILE, AUTOENCODER_FILE, CLASSIFIER_FILE)


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
    """Write ``bundle`` to ``directory`` (replacing its files); returns the version.

    Refuses (``BundleError``) a bundle that fails the value checks before writing anything;
    the probe scores are taken from the files as written, so loading reproduces them."""
    check_values(bundle)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).unlink(missing_ok=True)  # half-written: never loadable
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
        "probes": record_probes(_read(directory)),
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


def _read(directory: Path) -> ModelBundle:
    """Parse the bundle's files (no verification); ``BundleError`` if they are malformed."""
    try:
        spec = json.loads((directory / SPEC_FILE).read_text())
        with np.load(directory / AUTOENCODER_FILE, allow_pickle=False) as npz:
            n_layers = len(spec["autoencoder"]["activations"])
            weights = tuple(npz[f"w{i}"] for i in range(n_layers))
            biases = tuple(npz[f"b{i}"] for i in range(n_layers))
        autoencoder = DenseAutoencoder(weights, biases, tuple(spec["autoencoder"]["activations"]))
        classifier = lgb.Booster(model_str=(directory / CLASSIFIER_FILE).read_text())
        return ModelBundle(
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


def load_bundle(
    directory: Path,
    expected_features: Sequence[str] | None = None,
    feature_source: str = "the FeatureService",
    require_probes: bool = False,
) -> ModelBundle:
    """Verify, load and prove a bundle directory: the hashes, then
    :func:`fraud_model.verify.prove` (values, the feature list when
    ``expected_features`` is given, the trial score); raises ``BundleError`` on any
    problem. ``require_probes`` refuses a bundle whose manifest records no probe scores."""
    manifest = verify_bundle(directory)
    recorded = manifest.get("probes")
    # The bundle that is proven is the one returned: it keeps its compiled forest.
    bundle = replace(_read(directory), version=_version(directory), proof=proof_note(recorded))
    prove(bundle, recorded, expected_features, feature_source, require_probes)
    return bundle
