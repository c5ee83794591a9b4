"""The model bundle: Keras parity, exact round trip, refusal of damaged bundles, no TF."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feature_repo.request_features import NEW_CUSTOMER
from fraud_model.bundle import (
    AUTOENCODER_FILE,
    CLASSIFIER_FILE,
    MANIFEST_FILE,
    SPEC_FILE,
    BundleError,
    load_bundle,
)
from fraud_model.scorer import EnsembleScorer
from training.modelling.fit import keras_parity
from training.train import PARITY_TOLERANCE

pytestmark = pytest.mark.integration


@pytest.fixture
def bundle_dir(tiny_bundle: Path) -> Path:
    """The session's tiny bundle (tests/serving.py); tests that damage it copy it first."""
    return tiny_bundle


def _copy(bundle_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def test_numpy_autoencoder_matches_keras(tiny_trained: Any) -> None:
    result, parts, _ = tiny_trained
    assert keras_parity(result, parts["validation"]) <= PARITY_TOLERANCE
    assert keras_parity(result, parts["test"]) <= PARITY_TOLERANCE


def test_round_trip_scores_identically(tiny_trained: Any, bundle_dir: Path) -> None:
    result, parts, features = tiny_trained
    loaded = load_bundle(bundle_dir)
    assert loaded.features == tuple(features)
    assert len(loaded.version) == 12
    before = EnsembleScorer(result.bundle).score(parts["test"].x)
    after = EnsembleScorer(loaded).score(parts["test"].x)
    assert np.array_equal(before.probability, after.probability)
    assert np.array_equal(before.level_index, after.level_index)


def test_scores_are_probabilities_with_consistent_tiers(tiny_trained: Any) -> None:
    result, parts, _ = tiny_trained
    scorer = EnsembleScorer(result.bundle)
    batch = scorer.score(parts["test"].x)
    assert np.all((batch.probability >= 0) & (batch.probability <= 1))
    assert np.all((batch.ae_score >= 0) & (batch.ae_score <= 1))
    assert np.array_equal(batch.level_index, result.bundle.tiers.level_index(batch.probability))
    riskiest = int(np.argmax(batch.probability))
    reasons = scorer.reasons(scorer.score(parts["test"].x[riskiest : riskiest + 1]))
    assert reasons[0] and all(r.feature in scorer.features for r in reasons[0])


def test_missing_features_get_new_entity_defaults(tiny_trained: Any) -> None:
    result, parts, features = tiny_trained
    scorer = EnsembleScorer(result.bundle)
    raw = parts["test"].x[:3].copy()
    raw[:, features.index("customer_usual_hour_30d")] = np.nan
    filled, missing = scorer.impute(raw)
    assert missing[:, features.index("customer_usual_hour_30d")].all()
    usual_hour = NEW_CUSTOMER["customer_usual_hour_30d"]
    assert np.all(filled[:, features.index("customer_usual_hour_30d")] == usual_hour)
    with pytest.raises(ValueError):
        scorer.score(raw[:, :-1])


@pytest.mark.parametrize("victim", [SPEC_FILE, AUTOENCODER_FILE, CLASSIFIER_FILE])
def test_a_tampered_file_is_refused(bundle_dir: Path, tmp_path: Path, victim: str) -> None:
    copy = _copy(bundle_dir, tmp_path)
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        load_bundle(copy)


@pytest.mark.parametrize("victim", [MANIFEST_FILE, CLASSIFIER_FILE])
def test_a_missing_file_is_refused(bundle_dir: Path, tmp_path: Path, victim: str) -> None:
    copy = _copy(bundle_dir, tmp_path)
    (copy / victim).unlink()
    with pytest.raises(BundleError):
        load_bundle(copy)


def test_a_truncated_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    copy = _copy(bundle_dir, tmp_path)
    (copy / CLASSIFIER_FILE).write_text((copy / CLASSIFIER_FILE).read_text()[:100])
    with pytest.raises(BundleError):
        load_bundle(copy)


def test_a_consistent_but_malformed_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    copy = _copy(bundle_dir, tmp_path)
    spec = json.loads((copy / SPEC_FILE).read_text())
    spec["features"] = spec["features"][:-1]
    (copy / SPEC_FILE).write_text(json.dumps(spec))
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    import hashlib

    manifest["files"][SPEC_FILE] = hashlib.sha256((copy / SPEC_FILE).read_bytes()).hexdigest()
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError):
        load_bundle(copy)


def test_loading_and_scoring_never_imports_tensorflow(bundle_dir: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from fraud_model.bundle import load_bundle\n"
        "from fraud_model.scorer import EnsembleScorer\n"
        f"b = load_bundle(Path({str(bundle_dir)!r}))\n"
        "EnsembleScorer(b).score(np.zeros((2, len(b.features))))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
