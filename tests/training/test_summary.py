"""The make demo summary runs on the training set's FeatureService (v2 since #9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from training.reporting.summary import main

pytestmark = pytest.mark.integration


def test_the_demo_summary_scores_the_looked_up_transaction(
    tiny_data: Path,
    feast_repo: Path,
    tiny_bundle: Path,
    tiny_params: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params))
    main(
        ["--data", str(tiny_data), "--repo", str(feast_repo), "--bundle", str(tiny_bundle),
         "--metrics", str(tmp_path / "none.json"), "--params", str(params)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"online lookup via {tiny_params['training_set']['feature_service']}" in out
    assert "vel_tx_count_24h" in out
    assert "that transaction: fraud_probability" in out
