"""Reloads prove a bundle before swapping: value checks, the FeatureService's feature
list and a trial score on the manifest's probe rows. A bundle that passes its hash check
but fails any of them is refused (409) and the old model keeps scoring; at start-up it
degrades to the rules and says why (issue 22, item 5)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from fraud_model.bundle import (
    CLASSIFIER_FILE,
    CONTENT_FILES,
    MANIFEST_FILE,
    SPEC_FILE,
    load_bundle,
    write_bundle,
)
from tests.serving import as_request

pytestmark = pytest.mark.integration


def _copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def _rehash(directory: Path) -> None:
    """Recompute every file's SHA-256 in the manifest, as a careless re-export would."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    for name in CONTENT_FILES:
        manifest["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _edit_spec(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    spec = json.loads((directory / SPEC_FILE).read_text())
    change(spec)
    (directory / SPEC_FILE).write_text(json.dumps(spec))  # NaN is written as NaN
    _rehash(directory)


def _nan_calibration(spec: dict[str, Any]) -> None:
    """An isotonic map of NaNs (whichever calibration the tiny run kept)."""
    nan = float("nan")
    spec["calibration"] = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [nan] * 3}


def _reversed_features(spec: dict[str, Any]) -> None:
    spec["features"] = spec["features"][::-1]


def _swap_classifier(directory: Path) -> None:
    """Another valid LightGBM model of the same width and feature names."""
    names = json.loads((directory / SPEC_FILE).read_text())["features"]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, len(names)))
    y = (x[:, 0] + rng.normal(size=400) > 1).astype(int)
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    other = lgb.train(params, lgb.Dataset(x, label=y, feature_name=names), num_boost_round=5)
    (directory / CLASSIFIER_FILE).write_text(other.model_to_string())
    _rehash(directory)


def _reload_metric(text: str, outcome: str) -> float:
    line = f'fraud_model_reload_total{{outcome="{outcome}"}}'
    values = [float(row.split()[-1]) for row in text.splitlines() if row.startswith(line)]
    return values[0] if values else 0.0


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: _edit_spec(d, _nan_calibration), "calibration"),
        (lambda d: _edit_spec(d, _reversed_features), "feature"),
        (_swap_classifier, "trial score"),
    ],
    ids=["nan-calibration", "reversed-features", "swapped-classifier"],
)
def test_a_bundle_that_passes_its_hashes_but_cannot_score_is_refused(
    client_for: Any,
    recent: pd.DataFrame,
    tiny_bundle: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    why: str,
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    client = client_for(bundle_uri=str(bundle))
    body = as_request(recent.iloc[0])
    before = client.post("/v1/predict", json=body)
    assert before.status_code == 200
    version = before.json()["model_version"]

    damage(bundle)
    refused = client.post("/v1/model/reload")
    assert refused.status_code == 409
    assert refused.json()["status"] == "refused"
    assert refused.json()["version"] == version
    assert why in refused.json()["problem"]

    for row in range(3):  # the old model keeps scoring, unchanged
        after = client.post("/v1/predict", json=as_request(recent.iloc[row]))
        assert after.status_code == 200
        assert after.json()["decision_source"] == "model"
        assert after.json()["model_version"] == version
    assert (
        after.json()["fraud_probability"]
        == client.post("/v1/predict", json=as_request(recent.iloc[2])).json()["fraud_probability"]
    )
    assert client.get("/readyz").json()["model"] == {"status": "loaded", "detail": version}
    metrics = client.get("/metrics").text
    assert _reload_metric(metrics, "refused") == 1.0
    assert _reload_metric(metrics, "reloaded") == 0.0
    assert "fraud_model_loaded 1.0" in metrics


def test_without_a_feature_store_a_reversed_feature_list_is_refused(
    client_for: Any, tiny_bundle: Path, tmp_path: Path
) -> None:
    """No FeatureService to compare with: the bundle's own models and probes catch it."""
    bundle = _copy(tiny_bundle, tmp_path)
    client = client_for(bundle_uri=str(bundle), feature_repo=tmp_path / "no-repo")
    version = client.get("/v1/model").json()["version"]
    _edit_spec(bundle, _reversed_features)
    refused = client.post("/v1/model/reload")
    assert refused.status_code == 409
    assert "feature" in refused.json()["problem"]
    assert client.get("/v1/model").json()["version"] == version


def test_a_good_new_bundle_is_reloaded_and_scores(
    client_for: Any, recent: pd.DataFrame, tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    client = client_for(bundle_uri=str(bundle))
    old = client.get("/v1/model").json()["version"]
    loaded = load_bundle(bundle)
    tiers = dataclasses.replace(loaded.tiers, critical=min(1.0, loaded.tiers.critical + 0.01))
    new = write_bundle(dataclasses.replace(loaded, tiers=tiers), bundle)
    assert new != old

    reloaded = client.post("/v1/model/reload")
    assert reloaded.status_code == 200
    assert reloaded.json() == {
        "status": "reloaded",
        "version": new,
        "previous_version": old,
        "problem": None,
    }
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0]))
    assert answer.status_code == 200
    assert answer.json()["model_version"] == new
    assert answer.json()["decision_source"] == "model"
    assert _reload_metric(client.get("/metrics").text, "reloaded") == 1.0


def test_a_bundle_without_probe_scores_is_refused_on_reload(
    client_for: Any, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Written before trial scoring: kept at start-up (value checks only), but never swapped
    in over a model that was proven."""
    bundle = _copy(tiny_bundle, tmp_path)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest.pop("probes")
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    client = client_for(bundle_uri=str(bundle))
    assert client.get("/readyz").json()["model"]["status"] == "loaded"
    refused = client.post("/v1/model/reload")
    assert refused.status_code == 409
    assert "re-export" in refused.json()["problem"]


def test_at_start_up_a_nan_bundle_degrades_to_the_rules_and_says_why(
    client_for: Any, recent: pd.DataFrame, tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_spec(bundle, _nan_calibration)
    client = client_for(bundle_uri=str(bundle))
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded"
    assert ready["model"]["status"] == "fallback"
    assert "calibration" in ready["model"]["detail"]
    assert "calibration" in client.get("/v1/model").json()["problem"]
    answer = client.post("/v1/predict", json=as_request(recent.iloc[0]))
    assert answer.status_code == 200
    assert answer.json()["decision_source"] == "rules_fallback"
