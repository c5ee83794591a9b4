"""Feast's Spark offline store against the path it replaced, on the tiny repository.

The training set through Spark equals, to float tolerance, the one Feast's DuckDB store
builds from the same registered views on FileSources (the previous offline store):
point-in-time joins, the 2-day TTL of the snapshots, the velocity state's list columns
and the on-demand views computed from them. The same holds when the tables are
date-partitioned dataset directories (the feature job's layout), which Spark prunes by
date; materialization and the pandas readers work on both layouts. The scoring service's
interpreter (``.venv/serve``, without pyspark) opens the store and reads online features.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_repo.feast_runtime import import_feast
from feature_repo.offline_spark import repo_directory
from feature_repo.online_load import load, open_store, plan, publish, stored_views
from feature_repo.velocity import VELOCITY_FEATURES
from training.inputs.feast_store import feast_cli, materialization_end, service_features
from training.materialize import loaded_entities
from training.training_set import historical_features

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SERVICE = "fraud_detection_v2"
TABLES = (
    "customer_features.parquet",
    "terminal_features.parquet",
    "terminal_locations.parquet",
    "customer_velocity.parquet",
)
SERVE_PYTHON = ROOT / ".venv" / "serve" / "bin" / "python"


def partition_by_date(table: Path, out: Path) -> None:
    """A single-file table rewritten as the feature job writes it: ``date=YYYY-MM-DD``."""
    if table.is_dir():
        shutil.copytree(table, out)
        return
    frame = pd.read_parquet(table)
    frame["date"] = frame["event_timestamp"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    pq.write_to_dataset(
        pa.Table.from_pandas(frame, preserve_index=False), out, partition_cols=["date"]
    )


@pytest.fixture(scope="module")
def file_repo(feast_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny repository with every table as one Parquet file, applied and loaded: the
    layout before the feature job partitioned them (Feast's SparkSource reads both). Loaded
    here, not the session's store, which other tests' velocity pushes change."""
    repo = tmp_path_factory.mktemp("single_file") / "feature_repo"
    (repo / "data").mkdir(parents=True)
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(feast_repo / name, repo / name)
    for table in TABLES:
        frame = pd.read_parquet(feast_repo / "data" / table)
        frame.drop(columns=["date"], errors="ignore").to_parquet(repo / "data" / table, index=False)
    subprocess.run([*feast_cli(repo), "apply", "--skip-source-validation"], check=True)
    load(repo, "feature_store.yaml", SERVICE)
    return repo


@pytest.fixture(scope="module")
def partitioned_repo(feast_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny repository with every table as a date-partitioned directory, applied."""
    repo = tmp_path_factory.mktemp("partitioned") / "feature_repo"
    (repo / "data").mkdir(parents=True)
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(feast_repo / name, repo / name)
    for table in TABLES:
        partition_by_date(feast_repo / "data" / table, repo / "data" / table)
    subprocess.run([*feast_cli(repo), "apply", "--skip-source-validation"], check=True)
    return repo


def duckdb_store(repo: Path, out: Path) -> Any:
    """The previous path: the same registered objects with FileSources, joined by DuckDB."""
    feast = import_feast()
    from feast.repo_config import RepoConfig

    spark = open_store(repo)
    views = spark.list_feature_views()
    for view in views:
        source = view.batch_source
        files = feast.FileSource(
            name=source.name,
            path=str(repo / source.path),
            timestamp_field=source.timestamp_field,
        )
        view.batch_source = files
        if view.stream_source is not None:
            view.stream_source.batch_source = files
    out.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project=spark.project,
        provider="local",
        registry=str(out / "registry.db"),
        online_store={"type": "sqlite", "path": str(out / "online.db")},
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
    )
    store = feast.FeatureStore(repo_path=str(out), config=config)
    store.apply(
        [
            *spark.list_entities(),
            *views,
            *spark.list_on_demand_feature_views(),
            *spark.list_feature_services(),
        ]
    )
    return store


@pytest.fixture(scope="module")
def transactions(tiny_data: Path) -> pd.DataFrame:
    """Every 8th transaction of v0 and v1 (about 3,000): each row is joined on its own,
    and the sample spans the whole period (the first days have no snapshot yet)."""
    both = pd.concat(
        [pd.read_parquet(tiny_data / p / "transactions.parquet") for p in ("v0", "v1")],
        ignore_index=True,
    )
    return both.iloc[::8].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(feast_repo: Path, transactions: pd.DataFrame, tmp_path_factory: Any) -> pd.DataFrame:
    store = duckdb_store(feast_repo, tmp_path_factory.mktemp("duckdb"))
    return historical_features(store, feast_repo, transactions, SERVICE)


def test_the_sources_are_spark_and_partition_pruned_only_when_partitioned(
    file_repo: Path, partitioned_repo: Path
) -> None:
    for repo, column in ((file_repo, ""), (partitioned_repo, "date")):
        views = stored_views(open_store(repo), SERVICE)
        assert {type(v.batch_source).__name__ for v in views} == {"SparkSource"}
        assert {v.batch_source.date_partition_column for v in views} == {column}
        assert {v.batch_source.path for v in views} == {f"data/{t}" for t in TABLES}


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["file", "partitioned"])
def test_the_spark_training_set_equals_the_previous_path(
    layout: str,
    file_repo: Path,
    partitioned_repo: Path,
    transactions: pd.DataFrame,
    reference: pd.DataFrame,
) -> None:
    repo = file_repo if layout == "file" else partitioned_repo
    store = open_store(repo)
    got = historical_features(store, repo, transactions, SERVICE)
    assert list(got.columns) == service_features(store, SERVICE) == list(reference.columns)
    assert len(got) == len(transactions)
    pd.testing.assert_frame_equal(got, reference, rtol=1e-9, atol=1e-9)
    # Not vacuous: the TTL leaves the first days without snapshots (NaN), the velocity
    # state's list columns give non-trivial counts.
    missing = got["customer_avg_amount_30d"].isna()
    assert 0 < missing.sum() < len(got) // 2
    assert (got["customer_avg_amount_30d"].dropna() > 0).all()
    assert (got[list(VELOCITY_FEATURES)].fillna(0).abs().sum() > 0).sum() >= 5


def test_the_join_prunes_partitions_by_date(
    partitioned_repo: Path, transactions: pd.DataFrame
) -> None:
    from training.training_set import entity_frame

    store = open_store(partitioned_repo)
    sample = transactions.sort_values("timestamp").tail(50)
    with repo_directory(store, partitioned_repo):
        job = store.get_historical_features(
            entity_df=entity_frame(sample), features=store.get_feature_service(SERVICE)
        )
    first = (sample["timestamp"].min() - pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    last = sample["timestamp"].max().strftime("%Y-%m-%d")
    assert f"AND date >= '{first}'" in job.query
    assert f"AND date <= '{last}'" in job.query


def test_materialization_and_readers_work_on_partitioned_tables(
    file_repo: Path, partitioned_repo: Path, tmp_path: Path
) -> None:
    end = materialization_end(file_repo)
    assert materialization_end(partitioned_repo) == end
    start = end - pd.Timedelta(days=2)
    counts = loaded_entities(partitioned_repo, start, end)
    assert counts == loaded_entities(file_repo, start, end)
    assert set(counts) == {t.removesuffix(".parquet") for t in TABLES}
    assert min(counts.values()) > 0
    windows = load(partitioned_repo, "feature_store.yaml", SERVICE)
    expected_windows = plan(file_repo, open_store(file_repo), SERVICE)
    assert sorted(windows, key=str) == sorted(expected_windows, key=str)
    assert {w.view for w in windows} == {
        "customer_features",
        "terminal_features",
        "terminal_location",
        "customer_velocity",
    }
    ids = {
        "customer_id": ["C000121", "C000062", "C_NEVER_SEEN"],
        "terminal_id": ["T000290", "T000000", "T_NEVER_SEEN"],
    }
    rows = [dict(zip(ids, values, strict=True)) for values in zip(*ids.values(), strict=True)]
    views = ["customer_features", "terminal_features", "customer_velocity"]
    refs = [
        f"{v}:{f.name}" for v in views for f in open_store(file_repo).get_feature_view(v).features
    ]
    got = open_store(partitioned_repo).get_online_features(refs, rows).to_dict()
    expected = open_store(file_repo).get_online_features(refs, rows).to_dict()
    assert got == expected
    assert (
        got["customer_avg_amount_30d"][0] is not None and got["customer_avg_amount_30d"][2] is None
    )
    published = publish(partitioned_repo, SERVICE, tmp_path / "bucket")
    assert {p.name for p in published} == {*TABLES, "registry.db"}
    assert all((tmp_path / "bucket" / t).is_dir() for t in TABLES)
    again = publish(partitioned_repo, SERVICE, tmp_path / "bucket")  # over the old copy
    assert again == published and not list((tmp_path / "bucket").glob("*.partial"))


SERVE_CHECK = """
import importlib.util, json, sys
from pathlib import Path
from app.services.features import OnlineFeatures
assert importlib.util.find_spec("pyspark") is None, "pyspark is importable"
features = OnlineFeatures.open(Path(sys.argv[1]), "feature_store.yaml", sys.argv[2], reader="feast")
values = features.read({"customer_id": ["C000121"], "terminal_id": ["T000290"]})
store = features._store
print(json.dumps({
    "offline_store": store.config.offline_store.type,
    "sources": sorted({type(v.batch_source).__name__ for v in store.list_feature_views()}),
    "customer": values["customer_features"].values.tolist(),
    "pyspark_loaded": "pyspark" in sys.modules,
}))
"""


@pytest.mark.skipif(
    not SERVE_PYTHON.exists(), reason="no serving venv (make .venv/serve/.installed)"
)
def test_the_serving_interpreter_reads_online_features_without_pyspark(feast_repo: Path) -> None:
    from app.services.features import OnlineFeatures

    done = subprocess.run(
        [str(SERVE_PYTHON), "-c", SERVE_CHECK, str(feast_repo), SERVICE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["offline_store"] == "file"
    assert out["sources"] == ["SparkSource"]
    assert out["pyspark_loaded"] is False
    here = OnlineFeatures.open(feast_repo, "feature_store.yaml", SERVICE, reader="feast")
    expected = here.read({"customer_id": ["C000121"], "terminal_id": ["T000290"]})
    np.testing.assert_allclose(out["customer"], expected["customer_features"].values.tolist())
    assert not np.isnan(np.asarray(out["customer"], dtype=float)).all()
