"""Training on public schemas: time-ordered split, point-in-time join, end-to-end metrics.

The two end-to-end runs train the real ensemble (shrunk parameters) on small synthetic
files in the ULB and Fraud Detection Handbook formats, with detectable fraud.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from fraud_model.bundle import load_bundle
from training import external
from training.inputs import public_data
from training.inputs.params import load_params

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_KEYS = (
    "auprc",
    "roc_auc",
    "f1",
    "precision",
    "recall",
    "n_test",
    "n_test_fraud",
    "seconds",
)


def _small_params(directory: Path) -> Path:
    params: dict[str, Any] = copy.deepcopy(load_params(ROOT / "params.yaml"))
    train = params["train"]
    train["autoencoder"]["max_epochs"] = 3
    train["classifier"]["max_rounds"] = 50
    train["classifier"]["early_stopping_rounds"] = 10
    train["classifier"]["imbalance"] = ["none", "scale_pos_weight"]
    train["search"]["classifier"] = {"trials": 1, "timeout_seconds": None}
    train["search"]["autoencoder"] = {"trials": 0, "timeout_seconds": None}
    train["decision"]["alert_budget_per_day"] = 1000
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def small_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _small_params(tmp_path_factory.mktemp("params"))


def _handbook_frame(rows: int = 3000, days: int = 60, seed: int = 0) -> pd.DataFrame:
    """Handbook-format transactions; fraud is about 5 % and has large amounts."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, days * 86_400, rows)).astype(np.int64)
    customer = rng.integers(0, 100, rows)
    terminal = rng.integers(0, 200, rows)
    usual = rng.uniform(10, 60, 100)[customer]
    fraud = rng.random(rows) < 0.05
    amount = rng.gamma(2.0, usual / 2.0)
    amount = np.where(fraud, amount * 4.0 + 150.0, amount)
    stamps = pd.Timestamp("2018-04-01") + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(rows),
            "TX_DATETIME": stamps.strftime("%Y-%m-%d %H:%M:%S"),
            "CUSTOMER_ID": customer,
            "TERMINAL_ID": terminal,
            "TX_AMOUNT": amount.round(2),
            "TX_TIME_SECONDS": seconds,  # ignored
            "TX_FRAUD": fraud.astype(int),
            "TX_FRAUD_SCENARIO": np.where(fraud, 1, 0),
        }
    )


def _ulb_frame(rows: int = 4000, seed: int = 1) -> pd.DataFrame:
    """ULB-format transactions over two days; fraud is about 5 % and shifts V1, V3, Amount."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < 0.05
    table = {"Time": np.sort(rng.uniform(0, 2 * 86_400, rows)).round()}
    for i in range(1, 29):
        table[f"V{i}"] = rng.normal(size=rows)
    table["V1"] = table["V1"] - 3.0 * fraud
    table["V3"] = table["V3"] + 2.0 * fraud
    table["Amount"] = (rng.lognormal(3.0, 1.0, rows) * np.where(fraud, 4.0, 1.0)).round(2)
    table["Class"] = fraud.astype(int)
    return pd.DataFrame(table)


def _run(tmp_path: Path, schema: str, data: Path, params: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "metrics.json"
    external.main(
        ["--schema", schema, "--data", str(data), "--out", str(out), "--params", str(params)]
        + list(extra)
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _check_metrics(result: dict[str, Any], gap_days: float) -> None:
    for key in REQUIRED_KEYS:
        assert key in result, key
    assert result["n_test"] > 0 and result["n_test_fraud"] > 0
    assert result["auprc"] > 2 * result["n_test_fraud"] / result["n_test"]
    assert result["roc_auc"] > 0.7
    parts = result["split"]["parts"]
    train_last = pd.Timestamp(parts["train"]["last"])
    val_first, val_last = (
        pd.Timestamp(parts["validation"]["first"]),
        pd.Timestamp(parts["validation"]["last"]),
    )
    test_first = pd.Timestamp(parts["test"]["first"])
    assert train_last < val_first <= val_last < test_first
    assert test_first - val_last >= pd.Timedelta(days=gap_days)
    assert result["n_train"] + result["n_validation"] + result["n_gap"] + result["n_test"] == (
        sum(p["rows"] for p in parts.values())
    )


def test_time_split_orders_parts_and_keeps_the_gap() -> None:
    start = pd.Timestamp("2020-01-01", tz="UTC")
    ts = pd.Series(start + pd.to_timedelta(np.linspace(0, 100, 10_001), unit="D"))
    parts = public_data.time_split(ts, test_fraction=0.2, gap_days=7)
    days = ((ts - start) / pd.Timedelta(days=1)).to_numpy()
    assert set(parts) == {"train", "validation", "gap", "test"}
    assert days[parts == "test"].min() >= 80 and days[parts == "test"].max() == 100
    assert days[parts == "gap"].min() >= 73 and days[parts == "gap"].max() < 80
    # validation: the last 20 % of the 73 days before the gap
    assert days[parts == "validation"].min() >= 58.4 and days[parts == "validation"].max() < 73
    assert days[parts == "train"].max() < 58.4
    order = {"train": 0, "validation": 1, "gap": 2, "test": 3}
    assert np.all(np.diff([order[p] for p in parts]) >= 0)


def test_time_split_splits_the_time_span_not_the_rows() -> None:
    start = pd.Timestamp("2020-01-01", tz="UTC")
    # 90 % of the rows fall in the first day of ten
    offsets = np.concatenate([np.linspace(0, 1, 9000), np.linspace(1, 10, 1000)])
    ts = start + pd.to_timedelta(offsets, unit="D")
    parts = public_data.time_split(pd.Series(ts[::-1]), test_fraction=0.2, gap_days=0)
    assert 150 < (parts == "test").sum() < 250  # ~ 2 days of 9 sparse ones, not 2000 rows
    assert (parts == "gap").sum() == 0


def test_time_split_rejects_bad_fractions() -> None:
    ts = pd.Series(pd.date_range("2020-01-01", periods=10, freq="D", tz="UTC"))
    with pytest.raises(SystemExit, match="test-fraction"):
        public_data.time_split(ts, test_fraction=1.5, gap_days=0)
    with pytest.raises(SystemExit, match="gap-days"):
        public_data.time_split(ts, test_fraction=0.2, gap_days=-1)


def test_point_in_time_join_takes_latest_snapshot_within_ttl() -> None:
    day = pd.Timestamp("2020-01-01", tz="UTC")
    snapshots = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "event_timestamp": [day + pd.Timedelta(days=d) for d in (1, 2, 5, 3)],
            "value": [1.0, 2.0, 5.0, 30.0],
        }
    )
    snapshots["event_timestamp"] = snapshots["event_timestamp"].astype("datetime64[us, UTC]")
    at = [0.5, 1.0, 2.5, 4.9, 5.0, 6.9, 7.5, 3.5]
    transactions = pd.DataFrame(
        {
            "customer_id": ["a"] * 7 + ["b"],
            "timestamp": [day + pd.Timedelta(days=d) for d in at],
        }
    )
    shuffled = transactions.iloc[[3, 0, 7, 5, 1, 6, 2, 4]].reset_index(drop=True)
    joined = public_data.point_in_time_join(shuffled, snapshots, "customer_id")
    expected = dict(zip(at, [np.nan, 1.0, 2.0, np.nan, 5.0, 5.0, np.nan, 30.0], strict=True))
    offsets = (shuffled["timestamp"] - day) / pd.Timedelta(days=1)
    np.testing.assert_array_equal(joined["value"].to_numpy(), [expected[o] for o in offsets])


def test_missing_column_exits_cleanly(tmp_path: Path, small_params: Path) -> None:
    data = tmp_path / "handbook.csv"
    _handbook_frame(rows=50).drop(columns=["TX_FRAUD", "TERMINAL_ID"]).to_csv(data, index=False)
    with pytest.raises(SystemExit, match="TERMINAL_ID, TX_FRAUD"):
        _run(tmp_path, "handbook", data, small_params)
    with pytest.raises(SystemExit, match="Class"):
        _run(tmp_path, "ulb", data, small_params)


def test_empty_train_part_exits_cleanly(tmp_path: Path, small_params: Path) -> None:
    data = tmp_path / "handbook.csv"
    _handbook_frame(rows=500, days=20).to_csv(data, index=False)
    with pytest.raises(SystemExit, match="train part is empty"):
        _run(tmp_path, "handbook", data, small_params, "--gap-days", "30")


@pytest.mark.slow
def test_handbook_end_to_end(tmp_path: Path, small_params: Path) -> None:
    data = tmp_path / "handbook.csv"
    _handbook_frame().to_csv(data, index=False)
    result = _run(tmp_path, "handbook", data, small_params)
    _check_metrics(result, gap_days=7)
    assert result["gap_days"] == 7 and result["n_gap"] > 0
    assert "recall_by_scenario" in result["test"]
    assert result["features"][-1] == "is_new_customer"
    assert result["imbalance_method"] in ("none", "scale_pos_weight")


@pytest.mark.slow
def test_ulb_end_to_end_from_gzip(tmp_path: Path, small_params: Path) -> None:
    data = tmp_path / "creditcard.csv.gz"
    _ulb_frame().to_csv(data, index=False)
    bundle = tmp_path / "bundle"
    result = _run(tmp_path, "ulb", data, small_params, "--bundle", str(bundle))
    _check_metrics(result, gap_days=0)
    assert result["gap_days"] == 0 and result["n_gap"] == 0
    assert load_bundle(bundle).version == result["bundle_version"]
