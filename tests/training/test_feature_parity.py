"""The Spark feature job reproduces the pandas feature code it replaced.

``tests/fixtures/feature_parity/`` holds a 40-day simulator stream and the tables the
pandas code (commit 40ffc98: ``compute_feature_tables`` and ``offline_states``) computed
from it (README.md there). The stream goes through the ``features`` stage as the system of
record's export; every table must match row for row, to float tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_repo.velocity import STATE_FIELDS
from training.featurejob.io import write_table
from training.featurejob.job import TABLES, read_table
from training.features import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "feature_parity"
RTOL = 1e-9


def _export(stream: pd.DataFrame, directory: Path) -> Path:
    """The stream in the system of record's export layout (Hive partitions by UTC date)."""
    dated = stream.assign(date=stream["timestamp"].dt.strftime("%Y-%m-%d"))
    pq.write_to_dataset(
        pa.Table.from_pandas(dated, preserve_index=False),
        directory / "transactions",
        partition_cols=["date"],
    )
    return directory


def _golden(name: str) -> pd.DataFrame:
    frame = pd.read_parquet(FIXTURES / f"{name}.parquet")
    key = frame.columns[0]
    return frame.sort_values([key, "event_timestamp"], kind="stable").reset_index(drop=True)


def _assert_snapshots_equal(mine: pd.DataFrame, golden: pd.DataFrame) -> None:
    assert list(mine.columns) == list(golden.columns)
    key = golden.columns[0]
    assert mine[key].tolist() == golden[key].tolist()
    assert (mine["event_timestamp"] == golden["event_timestamp"]).all()
    for column in golden.columns[2:]:
        np.testing.assert_allclose(
            mine[column], golden[column], rtol=RTOL, atol=1e-9, err_msg=column
        )


@pytest.fixture(scope="module")
def written(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("parity")
    export = _export(pd.read_parquet(FIXTURES / "transactions.parquet"), tmp / "export")
    out = tmp / "feature_repo_data"
    argv = ["--transactions", str(export), "--terminals", str(FIXTURES / "terminals.parquet")]
    main([*argv, "--out", str(out), "--params", str(ROOT / "params.yaml")])
    return out


@pytest.mark.slow
def test_tables_are_date_partitioned_directories(written: Path) -> None:
    for name in TABLES:
        table = written / f"{name}.parquet"
        assert table.is_dir()
        partitions = sorted(p.name for p in table.glob("date=*"))
        stamps = read_table(table)["event_timestamp"].dt.strftime("date=%Y-%m-%d")
        assert partitions == sorted(set(stamps))
        assert str(pd.read_parquet(table)["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert not list(written.glob(".*"))  # no staging directory left behind


@pytest.mark.slow
@pytest.mark.parametrize("name", ["customer_features", "terminal_features"])
def test_snapshots_match_the_pandas_job(written: Path, name: str) -> None:
    golden = _golden(name)
    assert len(golden) > 5_000 if name == "customer_features" else len(golden) > 10_000
    _assert_snapshots_equal(read_table(written / f"{name}.parquet"), golden)


@pytest.mark.slow
def test_terminal_risk_has_frauds_to_compare(written: Path) -> None:
    """The comparison above is not vacuous: the golden risk is positive on many rows."""
    golden = _golden("terminal_features")
    assert (golden["terminal_fraud_risk_30d"] > 0).sum() > 500


@pytest.mark.slow
def test_velocity_log_matches_the_pandas_job(written: Path) -> None:
    golden = _golden("customer_velocity")
    mine = read_table(written / "customer_velocity.parquet")
    assert list(mine.columns) == ["customer_id", "event_timestamp", *STATE_FIELDS]
    assert mine["customer_id"].tolist() == golden["customer_id"].tolist()
    assert (mine["event_timestamp"] == golden["event_timestamp"]).all()
    for name in ("vel_event_ids", "vel_event_terminals"):
        assert [list(v) for v in mine[name]] == [list(v) for v in golden[name]], name
    for name in ("vel_event_seconds", "vel_event_amounts", "vel_event_x_km", "vel_event_y_km"):
        np.testing.assert_allclose(
            np.concatenate(mine[name].to_numpy()),
            np.concatenate(golden[name].to_numpy()),
            rtol=RTOL,
            err_msg=name,
        )
    assert max(len(v) for v in golden["vel_event_ids"]) > 3  # states with history


def test_a_rerun_replaces_the_table(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "customer_features.parquet"
    path.write_bytes(b"the pandas job's single file")

    def table(stamps: list[str]) -> Any:
        frame = pd.DataFrame(
            {"customer_id": [f"C{i}" for i in range(len(stamps))], "event_timestamp": stamps}
        ).astype({"event_timestamp": "datetime64[us, UTC]"})
        return spark.createDataFrame(frame)

    assert write_table(table(["2025-01-01", "2025-01-02"]), path, "customer_id") == 2
    assert write_table(table(["2025-01-03"]), path, "customer_id") == 1
    assert sorted(p.name for p in path.glob("date=*")) == ["date=2025-01-03"]
    assert read_table(path)["customer_id"].tolist() == ["C0"]
    assert str(pd.read_parquet(path)["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
