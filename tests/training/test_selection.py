"""Choosing the fusion and the calibration on the folds' out-of-fold windows: the kept
candidate is the fold-best, each member alone is a candidate, stacking is judged on
coefficients fitted without the fold it is judged on."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraud_model.fusion import Fusion
from training.modelling.ensemble import (
    CANDIDATES,
    WindowScores,
    choose_calibration,
    choose_fusion,
    fit_stacking,
)


def _windows(ae_helps: bool, folds: int = 3, n: int = 3_000, seed: int = 0) -> list[WindowScores]:
    rng = np.random.default_rng(seed)
    windows = []
    for _ in range(folds):
        y = (rng.random(n) < 0.05).astype(np.int8)
        margin = 1.5 * y + rng.normal(size=n) - 3
        # The autoencoder sees another side of fraud, or nothing at all.
        log_error = (1.5 * y if ae_helps else 0.0) + rng.normal(size=n)
        error = np.exp(log_error)
        score = np.argsort(np.argsort(error)) / (n - 1)  # a quantile, as the normaliser gives
        windows.append(WindowScores(margin, score, error, y))
    return windows


def test_an_uninformative_autoencoder_leaves_the_classifier_alone() -> None:
    fusion, report = choose_fusion(_windows(ae_helps=False), "auto", 0.4, 0.05)
    means = {name: report["candidates"][name]["mean"] for name in CANDIDATES}
    assert report["chosen"] == max(means, key=lambda n: (means[n], -CANDIDATES.index(n)))
    assert report["chosen"] == "classifier_only"
    assert fusion == Fusion("weighted", ae_weight=0.0)
    ablation = report["ablation"]
    assert ablation["autoencoder_gain"] == 0.0
    assert ablation["autoencoder_only"] < 0.1  # about the base rate


def test_an_informative_autoencoder_is_fused_and_its_gain_reported() -> None:
    windows = _windows(ae_helps=True)
    fusion, report = choose_fusion(windows, "auto", 0.4, 0.05)
    assert report["chosen"] in ("weighted", "stacking")
    kept = report["candidates"][report["chosen"]]
    assert kept["mean"] == max(c["mean"] for c in report["candidates"].values())
    assert report["ablation"]["autoencoder_gain"] == pytest.approx(
        kept["mean"] - report["candidates"]["classifier_only"]["mean"]
    )
    assert report["ablation"]["autoencoder_gain"] > 0.05
    # Each fold value is the AUPRC of the kept fusion on that window.
    if report["chosen"] == "weighted":
        for window, value in zip(windows, kept["folds"], strict=True):
            assert value == pytest.approx(average_precision_score(window.y, window.fused(fusion)))


def test_stacking_is_judged_on_coefficients_fitted_on_the_other_folds() -> None:
    windows = _windows(ae_helps=True)
    _, report = choose_fusion(windows, "stacking", 0.4, 0.05)
    for k, window in enumerate(windows):
        rest = WindowScores.pooled([w for i, w in enumerate(windows) if i != k])
        expected = average_precision_score(window.y, window.fused(fit_stacking(rest, rest.y)))
        assert report["candidates"]["stacking"]["folds"][k] == pytest.approx(expected)
    assert report["stacking_in_sample"] is False
    _, single = choose_fusion(windows[:1], "auto", 0.4, 0.05)
    assert single["stacking_in_sample"] is True


def test_a_forced_method_is_kept_even_when_another_is_better() -> None:
    fusion, report = choose_fusion(_windows(ae_helps=False), "autoencoder_only", 0.4, 0.05)
    assert report["chosen"] == "autoencoder_only" and fusion.ae_weight == 1.0
    with pytest.raises(ValueError):
        choose_fusion(_windows(ae_helps=False), "magic", 0.4, 0.05)


def test_calibration_keeps_the_lower_out_of_fold_brier() -> None:
    rng = np.random.default_rng(2)
    fused, ys = [], []
    for _ in range(3):
        p = rng.uniform(0, 1, 4_000) ** 3
        y = (rng.random(4_000) < p).astype(np.int8)  # p is the true fraud probability
        fused.append(np.clip(p * 0.5, 0, 1))  # over-cautious raw score
        ys.append(y)
    calibrator, report = choose_calibration(fused, ys, "auto")
    briers = {name: report["brier"][name]["mean"] for name in ("isotonic", "platt")}
    assert report["chosen"] == min(briers, key=briers.__getitem__)
    assert calibrator.method == report["chosen"]
    forced, forced_report = choose_calibration(fused, ys, "platt")
    assert forced.method == "platt" and forced_report["brier"] == {}
    single, single_report = choose_calibration(fused[:1], ys[:1], "auto")
    assert single.method == "isotonic" and single_report["brier"] == {}
