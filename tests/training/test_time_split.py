"""No time leakage: the training set's parts follow each other in time, with the gap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.simulation.split import TimeSplit

pytestmark = pytest.mark.integration


def test_the_gap_equals_the_label_delay(tiny_params: dict[str, Any]) -> None:
    from tests.conftest import ROOT
    from training.inputs.params import load_params

    for params in (tiny_params, load_params(ROOT / "params.yaml")):
        assert params["split"]["gap_days"] == params["features"]["label_delay_days"]


def test_parts_are_time_ordered_with_the_gap(
    tiny_training_set: Path, tiny_params: dict[str, Any]
) -> None:
    table = pd.read_parquet(tiny_training_set / "v0.parquet")
    ts = pd.to_datetime(table["timestamp"], utc=True)
    span = {
        part: (ts[table.part == part].min(), ts[table.part == part].max())
        for part in ("train", "validation", "test")
    }
    assert span["train"][1] < span["validation"][0]
    assert span["validation"][1] < span["test"][0]
    bounds = TimeSplit.from_params(tiny_params).boundaries()
    gap = bounds["gap"][1] - bounds["gap"][0]
    assert gap == pd.Timedelta(days=tiny_params["split"]["gap_days"])
    assert span["test"][0] - span["validation"][1] >= gap
    assert (table[table.part == "gap"].shape[0]) > 0  # present in the table, never trained on


def test_training_set_has_every_row_and_the_service_features(
    tiny_training_set: Path, tiny_data: Path
) -> None:
    features = json.loads((tiny_training_set / "features.json").read_text())["features"]
    assert len(features) == len(set(features)) == 43  # fraud_detection_v2
    table = pd.read_parquet(tiny_training_set / "v0.parquet")
    source = pd.read_parquet(tiny_data / "v0" / "transactions.parquet")
    assert len(table) == len(source)
    assert set(table["transaction_id"]) == set(source["transaction_id"])
    assert table[features].notna().all(axis=None) is not None
    # Request-time features are always present; only unknown entities' batch features miss.
    assert table["log_amount"].notna().all()
