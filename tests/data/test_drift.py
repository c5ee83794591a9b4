"""Drift: KS flags v0 vs v1 on the drifted features, not v0 vs a resample of itself; the
pipeline stage adds a same-period control, prediction drift and performance drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.drift import feature_drift, main, population_stability_index
from training.simulation.simulate import DRIFTED_FEATURES


@pytest.fixture(scope="module")
def periods(tiny_data: Path) -> dict[str, pd.DataFrame]:
    return {v: pd.read_parquet(tiny_data / f"{v}/transactions.parquet") for v in ("v0", "v1")}


def test_ks_flags_the_drifted_features_of_v1(periods: dict[str, pd.DataFrame]) -> None:
    report = feature_drift(periods["v0"], periods["v1"], list(DRIFTED_FEATURES), alpha=0.01)
    assert report.drifted() == sorted(DRIFTED_FEATURES)
    assert report.alert


def test_no_drift_between_v0_and_a_resample_of_v0(periods: dict[str, pd.DataFrame]) -> None:
    resample = periods["v0"].sample(frac=1.0, replace=True, random_state=3)
    report = feature_drift(periods["v0"], resample, list(DRIFTED_FEATURES), alpha=0.01)
    assert report.drifted() == []
    assert not report.alert
    assert all(f.psi < 0.01 for f in report.features)


def test_psi_is_zero_for_equal_and_large_for_shifted_samples() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=20_000)
    assert population_stability_index(base, base) == pytest.approx(0.0, abs=1e-9)
    assert population_stability_index(base, base + 1.0) > 0.25
    flags = (rng.random(20_000) < 0.2).astype(float)
    assert population_stability_index(flags, (rng.random(20_000) < 0.5).astype(float)) > 0.1


def test_cli_on_two_tables(tmp_path: Path, periods: dict[str, pd.DataFrame]) -> None:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.csv"
    periods["v0"].to_parquet(ref)
    periods["v1"].to_csv(cur, index=False)
    out = tmp_path / "drift.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["--reference", str(ref), "--current", str(cur), "--out", str(out), "--fail-on-alert"])
    assert exit_info.value.code == 1
    assert '"alert": true' in out.read_text()


def test_a_significant_but_tiny_shift_is_not_drift() -> None:
    """With 200,000 rows per side KS rejects a 0.02-sigma shift; the effect floor does not."""
    rng = np.random.default_rng(1)
    a = pd.DataFrame({"x": rng.normal(size=200_000)})
    b = pd.DataFrame({"x": rng.normal(0.02, 1.0, size=200_000)})
    p_only = feature_drift(a, b, ["x"], alpha=0.01, min_ks_statistic=0.0)
    floored = feature_drift(a, b, ["x"], alpha=0.01, min_ks_statistic=0.05)
    assert p_only.features[0].ks_pvalue < 0.01 and p_only.drifted() == ["x"]
    assert floored.drifted() == []


@pytest.fixture(scope="module")
def stage_report(tiny_training_set: Path, tiny_bundle: Path) -> dict[str, object]:
    from training.drift import stage

    section = {"alpha": 0.01, "max_drift_share": 0.30, "psi_bins": 10, "min_ks_statistic": 0.05}
    report, _ = stage(tiny_training_set, tiny_bundle, section)
    return report


def test_stage_flags_v1_features_and_keeps_the_same_period_control_quiet(
    stage_report: dict[str, Any],
) -> None:
    features = stage_report["features"]
    assert features["alert"], features["drifted"]
    assert {"is_online", "log_amount"} <= set(features["drifted"])
    assert stage_report["control"]["drift_share"] < features["max_drift_share"]
    assert not stage_report["control"]["alert"]


def test_stage_reports_prediction_and_performance_drift(stage_report: dict[str, Any]) -> None:
    scores = {p["feature"] for p in stage_report["predictions"]}
    assert scores == {"probability", "classifier_score", "autoencoder_score"}
    performance = stage_report["performance"]
    for period in ("reference", "current"):
        assert 0.0 < performance[period]["auprc"] <= 1.0
    change = performance["change"]["auprc"]
    assert change == pytest.approx(
        performance["current"]["auprc"] - performance["reference"]["auprc"]
    )


def test_no_drift_between_v0_training_rows_and_their_resample(
    tiny_training_set: Path, tiny_bundle: Path
) -> None:
    from training.inputs.frames import read_features

    features = read_features(tiny_training_set)
    v0 = pd.read_parquet(tiny_training_set / "v0.parquet")
    train = v0[v0["part"] == "train"]
    resample = train.sample(frac=1.0, replace=True, random_state=5)
    report = feature_drift(train, resample, features)
    assert report.drifted() == [] and not report.alert
    v1 = pd.read_parquet(tiny_training_set / "v1.parquet")
    assert feature_drift(train, v1, features).alert


def test_cli_with_a_bundle_adds_prediction_and_performance_drift(
    tiny_training_set: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "drift.json"
    main(
        [
            "--reference",
            str(tiny_training_set / "v0.parquet"),
            "--current",
            str(tiny_training_set / "v1.parquet"),
            "--bundle",
            str(tiny_bundle),
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert report["alert"] is True
    assert [p["feature"] for p in report["predictions"]] == [
        "probability",
        "classifier_score",
        "autoencoder_score",
    ]
    assert set(report["performance"]) == {"reference", "current", "change"}


def test_stage_main_writes_metrics_and_plots(
    tiny_training_set: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    out, plots = tmp_path / "drift.json", tmp_path / "plots"
    main(
        [
            "--training-set",
            str(tiny_training_set),
            "--bundle",
            str(tiny_bundle),
            "--out",
            str(out),
            "--plots",
            str(plots),
        ]
    )
    report = json.loads(out.read_text())
    assert report["plots"] == ["psi.png", "scores.png"]
    for name in report["plots"]:
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"
    assert report["rows"]["reference"] > 0 and report["rows"]["current"] > 0
