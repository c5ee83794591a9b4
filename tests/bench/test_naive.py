"""The naive baseline scores exactly like the service (so its speed ratio compares like
with like), and the benchmark's in-process breakdown runs on the real runtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from benchmarks.inprocess import STAGES, breakdown
from tests.serving import as_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_naive_baseline_gives_the_service_probabilities(
    client: TestClient,
    tiny_bundle: Path,
    feast_repo: Path,
    recent: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks.naive_app import create_app

    monkeypatch.setenv("NAIVE_BUNDLE", str(tiny_bundle))
    monkeypatch.setenv("NAIVE_FEATURE_REPO", str(feast_repo))
    with TestClient(create_app()) as naive:
        for row in recent.head(15).itertuples():
            body = as_request(row)
            ours = client.post("/v1/predict", json=body).json()
            theirs = naive.post("/v1/predict", json=body).json()
            assert theirs["fraud_probability"] == pytest.approx(ours["fraud_probability"], abs=1e-6)
            assert theirs["decision"] == ours["decision"]


def test_breakdown_times_every_stage(
    settings_for: Callable[..., Settings], recent: pd.DataFrame
) -> None:
    bodies = [orjson.dumps(as_request(r)) for r in recent.head(60).itertuples()]
    result = breakdown(settings_for(), bodies, warmup=10)
    assert result["transactions"] == 50
    assert list(result["stages"]) == list(STAGES)
    for stats in [*result["stages"].values(), *result["alternatives"].values()]:
        assert 0 < stats["median_us"] <= stats["p99_us"]
    alternatives = result["alternatives"]
    assert set(alternatives) == {
        "feature lookup: Feast provider online_read",
        "feature lookup: Feast get_online_features",
        "classifier: Booster.predict (one row)",
        "explanation: exact TreeSHAP (pred_contrib)",
    }
    assert result["sum_of_medians_us"] == pytest.approx(
        sum(s["median_us"] for s in result["stages"].values()), rel=1e-3
    )
