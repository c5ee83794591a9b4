"""Bundle proof (fraud_model.verify): every value check, the feature list, the
probe rows written with a bundle and the trial score that rescoring them must match."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fraud_model.bundle import (
    AUTOENCODER_FILE,
    CONTENT_FILES,
    MANIFEST_FILE,
    SPEC_FILE,
    BundleError,
    load_bundle,
    write_bundle,
)
from fraud_model.calibration import Calibrator
from fraud_model.verify import PROBE_ROWS, PROBED, UNPROBED, check_features

pytestmark = pytest.mark.integration

NAN = float("nan")


def _copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def _manifest(directory: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((directory / MANIFEST_FILE).read_text())
    return manifest


def _rehash(directory: Path, manifest: dict[str, Any] | None = None) -> None:
    """Make the hash check pass again, leaving the probe record as it is."""
    manifest = manifest or _manifest(directory)
    for name in CONTENT_FILES:
        manifest["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``spec[a][b][i]`` for the dotted ``path`` (``*`` = every element)."""

    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if last == "*":
            node[:] = [value] * len(node)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _decreasing(key: str) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        values = spec[key]["log_error_quantiles"]
        values[0], values[-1] = values[-1], values[0]

    return change


def _isotonic(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A valid isotonic calibration (whichever method the tiny run kept), then one change."""

    def change(spec: dict[str, Any]) -> None:
        spec["calibration"] = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, 0.2, 0.9]}
        _set(f"calibration.{path}", value)(spec)

    return change


def _platt(slope: float) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["calibration"] = {"method": "platt", "slope": slope, "intercept": 0.0}

    return change


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_isotonic("y.*", NAN), "calibration values"),
        (_isotonic("y.0", -0.5), "within [0, 1]"),
        (_isotonic("x.-1", float("inf")), "calibration breakpoints"),
        (_platt(NAN), "calibration"),
        (_platt(-1.0), "slope must be positive"),
        (_set("tiers.high", NAN), "tiers"),
        (_set("ensemble.coef_clf", float("inf")), "ensemble"),
        (_set("fill_values.0", NAN), "fill_values"),
        (_set("standardizer.scale.3", 0.0), "standardizer scale"),
        (_set("standardizer.mean.0", NAN), "standardizer mean"),
        (_decreasing("anomaly"), "anomaly quantiles"),
        (_set("features.0", "not_a_feature"), "feature"),
    ],
    ids=[
        "nan-isotonic",
        "negative-probability",
        "infinite-breakpoint",
        "nan-platt",
        "decreasing-platt",
        "nan-tier",
        "infinite-fusion",
        "nan-imputation",
        "zero-scale",
        "nan-mean",
        "decreasing-quantiles",
        "renamed-feature",
    ],
)
def test_a_value_that_cannot_score_is_refused(
    tiny_bundle: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None], why: str
) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    spec = json.loads((copy / SPEC_FILE).read_text())
    change(spec)
    (copy / SPEC_FILE).write_text(json.dumps(spec))
    _rehash(copy)
    with pytest.raises(BundleError, match=why.replace("[", r"\[").replace("]", r"\]")):
        load_bundle(copy)


def test_a_nan_autoencoder_weight_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    with np.load(copy / AUTOENCODER_FILE) as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    arrays["w1"][0, 0] = np.nan
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    (copy / AUTOENCODER_FILE).write_bytes(buffer.getvalue())
    _rehash(copy)
    with pytest.raises(BundleError, match="autoencoder layer 1 weights"):
        load_bundle(copy)


def test_slightly_different_autoencoder_weights_fail_the_trial_score(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """Finite, well-shaped, only 1 % off: no value check can tell; the probes can."""
    copy = _copy(tiny_bundle, tmp_path)
    with np.load(copy / AUTOENCODER_FILE) as npz:
        arrays = {name: npz[name] * (1.01 if name == "w0" else 1.0) for name in npz.files}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    (copy / AUTOENCODER_FILE).write_bytes(buffer.getvalue())
    _rehash(copy)
    with pytest.raises(BundleError, match="trial score differs .* ae_score"):
        load_bundle(copy)


def test_write_bundle_records_probe_rows_and_their_scores(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(tiny_bundle)
    probes = _manifest(tiny_bundle)["probes"]
    assert sorted(probes["rows"]) == sorted(bundle.features)
    assert {len(values) for values in probes["rows"].values()} == {PROBE_ROWS}
    assert all(v is None for column in probes["rows"].values() for v in column[1:2])
    assert set(probes["scores"]) == set(PROBED)
    assert all(len(v) == PROBE_ROWS for v in probes["scores"].values())
    probability = np.asarray(probes["scores"]["probability"])
    assert np.all((probability >= 0) & (probability <= 1))
    assert probability.std() > 0  # the probes reach different leaves, not one constant
    # Deterministic: the same bundle written twice is byte-identical, version included.
    assert write_bundle(bundle, tmp_path / "again") == bundle.version
    assert bundle.proof != UNPROBED


def test_write_bundle_refuses_a_bundle_that_cannot_score(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    broken = dataclasses.replace(
        bundle,
        calibrator=Calibrator("isotonic", np.array([0.0, 0.5, 1.0]), np.full(3, NAN)),
    )
    with pytest.raises(BundleError, match="calibration values"):
        write_bundle(broken, tmp_path / "broken")
    assert not (tmp_path / "broken").exists()


def test_a_bundle_without_probe_scores_loads_unless_they_are_required(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    manifest = _manifest(copy)
    del manifest["probes"]
    _rehash(copy, manifest)
    assert load_bundle(copy).proof == UNPROBED
    with pytest.raises(BundleError, match="re-export"):
        load_bundle(copy, require_probes=True)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop("scores"),
        lambda p: p["scores"].update(probability=p["scores"]["probability"][:-1]),
        lambda p: p["rows"].pop(next(iter(p["rows"]))),
        lambda p: p["scores"]["clf_margin"].__setitem__(5, p["scores"]["clf_margin"][5] + 1e-3),
    ],
    ids=["no-scores", "short-scores", "missing-feature", "edited-score"],
)
def test_a_damaged_probe_record_is_refused(
    tiny_bundle: Path, tmp_path: Path, damage: Callable[[dict[str, Any]], None]
) -> None:
    copy = _copy(tiny_bundle, tmp_path)
    manifest = _manifest(copy)
    damage(manifest["probes"])
    _rehash(copy, manifest)
    with pytest.raises(BundleError, match="probe"):
        load_bundle(copy)


def test_the_feature_list_must_equal_the_feature_service_in_order(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    names = list(bundle.features)
    check_features(bundle, names, "fraud_detection_v2")
    with pytest.raises(BundleError, match="differs in names or order"):
        check_features(bundle, names[::-1], "fraud_detection_v2")
    with pytest.raises(BundleError, match=r"needs features not in it: \['log_amount'\]"):
        check_features(bundle, [n for n in names if n != "log_amount"], "fraud_detection_v2")
    with pytest.raises(BundleError, match="fraud_detection_v2"):
        load_bundle(
            tiny_bundle,
            expected_features=names[1:] + names[:1],
            feature_source="fraud_detection_v2",
        )
