"""The retraining's data set from the system of record's export: matured labels only,
days where every label is known, and a split that fits them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.inputs.params import load_params
from training.inputs.record_history import retraining_data
from training.simulation.split import TimeSplit

ROOT = Path(__file__).resolve().parents[2]


def export(tmp_path: Path, days: int = 40) -> Path:
    t0 = pd.Timestamp("2025-02-01", tz="UTC")
    stamps = [t0 + pd.Timedelta(hours=6 * i) for i in range(days * 4)]
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(stamps))],
            "timestamp": stamps,
            "customer_id": "C1", "terminal_id": "T1", "amount": 10.0,
            "merchant_category": "grocery", "channel": "online", "entry_mode": "ecom",
            "is_foreign": False, "distance_from_home_km": 1.0,
            "is_fraud": pd.array([1 if i % 10 == 0 else None for i in range(len(stamps))], "Int8"),
            "label_received_at": [s + pd.Timedelta(days=7) for s in stamps],
        }
    )  # fmt: skip
    out = tmp_path / "export" / "transactions" / "date=all"
    out.mkdir(parents=True)
    frame.to_parquet(out / "part-0.parquet", index=False)
    (tmp_path / "terminals.parquet").write_bytes(b"reference")
    return tmp_path / "export"


def test_only_fully_labelled_days_with_a_fitting_split(tmp_path: Path) -> None:
    params = load_params(ROOT / "params.yaml")
    as_of = pd.Timestamp("2025-03-23", tz="UTC")  # 50 days after the first
    fitted = retraining_data(
        export(tmp_path), tmp_path / "terminals.parquet", tmp_path / "data", params, as_of
    )
    rows = pd.read_parquet(tmp_path / "data" / "v0" / "transactions.parquet")
    assert rows["timestamp"].max() < as_of - pd.Timedelta(days=7)  # the delay has passed
    assert set(rows["is_fraud"]) == {0, 1} and rows["is_fraud"].dtype == "int8"
    assert (rows["is_fraud"] == 1).sum() == len(rows) // 10 + (len(rows) % 10 > 0)
    assert (tmp_path / "data" / "terminals.parquet").read_bytes() == b"reference"
    split = TimeSplit.from_params(fitted)
    assert split.total_days == 43 and split.gap_days == 0 and split.test_days == 7
    assert fitted["simulate"]["start_date"] == "2025-02-01"
    assert set(split.assign(rows["timestamp"])) >= {"train", "validation", "test"}


def test_too_short_a_history_is_refused(tmp_path: Path) -> None:
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ValueError, match="too few"):
        retraining_data(
            export(tmp_path, days=20), tmp_path / "terminals.parquet", tmp_path / "d", params
        )
