"""The ``explain`` stage: SHAP audit plots and metrics that agree with the service."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from training.explain import (
    CASES,
    reason_agreement,
    reasons_match,
    select_cases,
    stratified_sample,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explained(
    tiny_training_set: Path,
    tiny_bundle: Path,
    tiny_params: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], Path]:
    """The stage run once on the tiny data, with a small sample and two dependence plots."""
    from training.explain import main

    tmp = tmp_path_factory.mktemp("explain")
    params = copy.deepcopy(tiny_params)
    params["explain"].update(sample_rows=300, dependence_plots=2, max_display=8)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp / "shap"
    out.mkdir()
    (out / "stale.png").write_bytes(PNG_MAGIC)  # a leftover of an earlier run
    metrics = tmp / "shap.json"
    argv = ["--training-set", str(tiny_training_set), "--bundle", str(tiny_bundle)]
    argv += ["--params", str(tmp / "params.yaml"), "--out", str(out), "--metrics", str(metrics)]
    main(argv)
    return json.loads(metrics.read_text()), out


def test_plots_exist_and_are_real_pngs(explained: tuple[dict[str, Any], Path]) -> None:
    results, out = explained
    assert results["plots"] == sorted(p.name for p in out.glob("*.png"))
    assert "stale.png" not in results["plots"]
    expected = {"bar.png", "beeswarm.png", "autoencoder_errors.png"}
    expected |= {f"dependence_{name}.png" for name in results["dependence"]}
    expected |= {case["plot"] for case in results["local"]}
    assert set(results["plots"]) == expected
    for name in results["plots"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name


def test_schema_and_global_importance(explained: tuple[dict[str, Any], Path]) -> None:
    results, _ = explained
    assert set(results) == {
        "bundle_version", "sample_rows", "sample_frauds", "test_rows", "base_value",
        "treeshap_max_abs_diff_vs_lightgbm", "reason_method", "reason_agreement",
        "additivity_max_abs_error", "global",
        "dependence", "autoencoder", "local", "missing_cases", "plots",
    }  # fmt: skip
    assert isinstance(results["bundle_version"], str) and len(results["bundle_version"]) == 12
    assert results["sample_rows"] == min(300, results["test_rows"])
    # Every fraud up to half the sample is in it.
    assert 0 < results["sample_frauds"] <= results["sample_rows"] // 2
    assert isinstance(results["base_value"], float) and results["base_value"] < 0  # rare fraud
    assert results["treeshap_max_abs_diff_vs_lightgbm"] < 1e-6
    assert results["reason_method"] == "path"
    for part in ("all", "alerts"):
        agreement = results["reason_agreement"][part]
        assert agreement["rows"] > 0
        assert 0.5 <= agreement["top1"] <= 1 and 0.5 <= agreement["top3_overlap"] <= 1
    assert results["additivity_max_abs_error"] < 1e-6
    importance = [row["mean_abs_shap"] for row in results["global"]]
    assert importance == sorted(importance, reverse=True) and importance[0] > 0
    features = [row["feature"] for row in results["global"]]
    assert len(features) == len(set(features)) == len(results["autoencoder"])
    assert results["dependence"] == features[:2]


def test_autoencoder_errors_by_label(explained: tuple[dict[str, Any], Path]) -> None:
    results, _ = explained
    rows = results["autoencoder"]
    assert {row["feature"] for row in rows} == {row["feature"] for row in results["global"]}
    ratios = [row["ratio"] for row in rows]
    assert ratios == sorted(ratios, reverse=True)
    for row in rows:
        assert row["legit_mean_error"] >= 0 and row["fraud_mean_error"] >= 0
        expected = row["fraud_mean_error"] / row["legit_mean_error"]
        assert row["ratio"] == pytest.approx(expected, rel=1e-4)
    assert ratios[0] > 1  # fraud is reconstructed worse on some feature


def test_local_cases_meet_their_definitions(explained: tuple[dict[str, Any], Path]) -> None:
    results, _ = explained
    present = [case["case"] for case in results["local"]]
    assert sorted(present + results["missing_cases"]) == sorted(CASES)
    assert present  # the tiny bundle alerts on some rows
    for case in results["local"]:
        alerted = case["risk_level"] != "LOW"
        assert alerted == (case["decision"] != "approve")
        assert case["is_fraud"] == (case["case"] != "false_alarm")
        assert alerted == (case["case"] != "missed_fraud")
        assert case["plot"] == f"local_{case['case']}.png"
        assert 0 <= case["probability"] <= 1
        assert len(case["top"]) == 6
        magnitudes = [abs(t["shap"]) for t in case["top"]]
        assert magnitudes == sorted(magnitudes, reverse=True)
        clf = [r for r in case["reason_codes"] if r["source"] == "classifier"]
        assert 0 <= case["reason_codes_in_shap_top3"] <= len(clf) <= 3
        assert all(r["contribution"] > 0 for r in clf)


def test_select_cases_picks_documented_rows() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 1, 1])
    level = np.array([1, 3, 2, 2, 1, 2, 0, 0, 0])
    probability = np.array([0.4, 0.9, 0.7, 0.7, 0.35, 0.7, 0.1, 0.2, 0.05])
    fused = np.array([0.4, 0.9, 0.6, 0.8, 0.3, 0.75, 0.1, 0.2, 0.05])
    amount = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 15.0, 900.0])
    cases = select_cases(y, level, probability, fused, amount)
    # Caught frauds by (probability, fused): rows 0, 2, 3, 1; the lower median is row 2.
    assert cases == {"caught_fraud": 2, "false_alarm": 5, "missed_fraud": 8}


def test_select_cases_skips_cases_without_candidates() -> None:
    y = np.array([0, 0, 1])
    level = np.array([0, 0, 2])
    probability = np.array([0.1, 0.2, 0.9])
    cases = select_cases(y, level, probability, probability, np.ones(3))
    assert cases == {"caught_fraud": 2}


def test_stratified_sample_caps_fraud_at_half() -> None:
    y = np.zeros(1000, dtype=np.int8)
    y[:30] = 1
    sample = stratified_sample(y, 40, seed=3)
    assert len(sample) == 40 and y[sample].sum() == 20
    assert np.all(np.diff(sample) > 0)
    assert np.array_equal(sample, stratified_sample(y, 40, seed=3))
    few = stratified_sample(y, 200, seed=3)
    assert len(few) == 200 and y[few].sum() == 30  # every fraud, the rest legitimate
    assert len(stratified_sample(y, 5000, seed=3)) == 1000


def test_reason_agreement_counts_first_reasons_and_overlap() -> None:
    shap_values = np.array([[3.0, 2.0, 1.0, -1.0], [1.0, 2.0, 3.0, 0.0], [-1.0, -2.0, -3.0, -4.0]])
    service = np.array([[3.0, 1.0, 2.0, 5.0], [0.5, 2.0, 0.1, 0.0], [1.0, 0.0, 0.0, 0.0]])
    result = reason_agreement(service, shap_values, np.array([True, False, True]))
    # row 0: service's first is feature 3 (SHAP: 0); overlap {0, 2} of {0, 1, 2}
    # row 1: first 1 vs 2; overlap {0, 1, 2} of {0, 1, 2}; row 2: SHAP has no positive feature
    assert result["all"] == {"rows": 2, "top1": 0.0, "top3_overlap": pytest.approx(5 / 6)}
    assert result["alerts"] == {"rows": 1, "top1": 0.0, "top3_overlap": pytest.approx(2 / 3)}
    same = reason_agreement(shap_values, shap_values, np.array([True, True, True]))
    assert same["all"]["top1"] == 1.0 and same["all"]["top3_overlap"] == 1.0


def test_reasons_match_requires_order_and_values() -> None:
    names = ["a", "b", "c", "d"]
    shap_row = np.array([0.5, -1.0, 2.0, 0.25])
    reasons = [
        {"code": "C", "source": "classifier", "contribution": 2.0},
        {"code": "A", "source": "classifier", "contribution": 0.5},
        {"code": "D", "source": "classifier", "contribution": 0.25},
        {"code": "UNUSUAL_B", "source": "autoencoder", "contribution": 0.4},
    ]
    assert reasons_match(reasons, names, shap_row)
    assert not reasons_match([reasons[1], reasons[0], reasons[2]], names, shap_row)
    assert not reasons_match(reasons[:2], names, shap_row)
    wrong = [dict(reasons[0], contribution=2.001), *reasons[1:]]
    assert not reasons_match(wrong, names, shap_row)
