"""Calibration: a miscalibrated score gets a lower ECE; ranking and AUPRC survive."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraud_model.calibration import Calibrator
from training.modelling.ensemble import fit_calibrator
from training.modelling.metrics import expected_calibration_error


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from p, reported as sqrt(p): systematically too high."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 8.0, n)
    y = (rng.random(n) < p).astype(int)
    return np.sqrt(p), y


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_lowers_ece_on_held_out_data(method: str) -> None:
    fit_scores, fit_y = _overconfident(20_000, 1)
    scores, y = _overconfident(20_000, 2)
    calibrator = fit_calibrator(fit_scores, fit_y, method)
    before = expected_calibration_error(y, scores)
    after = expected_calibration_error(y, calibrator(scores))
    assert after < before / 3
    assert np.all((calibrator(scores) >= 0) & (calibrator(scores) <= 1))


def test_isotonic_keeps_the_ranking() -> None:
    fit_scores, fit_y = _overconfident(5_000, 3)
    scores, y = _overconfident(5_000, 4)
    calibrated = fit_calibrator(fit_scores, fit_y, "isotonic")(scores)
    assert np.all(np.diff(calibrated[np.argsort(scores)]) >= 0)
    assert average_precision_score(y, calibrated) == pytest.approx(
        average_precision_score(y, scores), abs=1e-12
    )


def test_calibrator_round_trips_and_rejects_bad_specs() -> None:
    calibrator = fit_calibrator(*_overconfident(2_000, 5), "isotonic")
    again = Calibrator.from_dict(calibrator.to_dict())
    probe = np.linspace(0, 1, 101)
    assert np.array_equal(again(probe), calibrator(probe))
    with pytest.raises(ValueError):
        Calibrator.from_dict({"method": "isotonic", "x": [0.5, 0.1], "y": [0.1, 0.2]})
    with pytest.raises(ValueError):
        Calibrator.from_dict({"method": "magic"})
