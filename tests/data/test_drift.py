"""Drift: KS flags v0 vs v1 on the drifted features, not v0 vs a resample of itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.drift import feature_drift, main, population_stability_index
from training.simulate import DRIFTED_FEATURES


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
