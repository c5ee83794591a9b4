"""Shared fixtures: tiny params, one tiny dataset, one materialized Feast repo per session."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from feature_repo.feast_runtime import import_feast

import_feast()  # before anything imports Feast: skips typeguard's import-time rewrite

from training.inputs.feature_tables import FeatureConfig  # noqa: E402
from training.inputs.params import load_params  # noqa: E402
from training.simulation.datasets import build  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.serving", "tests.postgres_server"]

TINY = {
    "simulate": {
        "n_customers": 150,
        "n_terminals": 300,
        "v0_days": 60,
        "v1_days": 20,
        "nearby_terminals": 10,
    },
    "split": {"burn_in_days": 7, "train_days": 25, "val_days": 10, "gap_days": 7, "test_days": 11},
    "train": {
        "selection": {"folds": 2, "window_days": 5, "gap_days": 7},
        "search": {
            "classifier": {"trials": 2, "timeout_seconds": None},
            "autoencoder": {"trials": 0, "timeout_seconds": None},
        },
        "autoencoder": {"max_epochs": 3, "batch_size": 256, "max_train_rows": 20000},
        # The served tiny model keeps the business rule the behavioural tests check.
        "classifier": {
            "max_rounds": 60,
            "early_stopping_rounds": 15,
            "min_child_samples": 10,
            "monotone": "on",
        },
    },
    "poisoning": {"autoencoder_max_epochs": 2},
}


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def tiny_params_dict() -> dict[str, Any]:
    """The project's params.yaml scaled down to a few thousand rows."""
    params = copy.deepcopy(load_params(ROOT / "params.yaml"))
    _merge(params, copy.deepcopy(TINY))
    return params


TRACKING_URI = "MLFLOW_TRACKING_URI"


@contextmanager
def tracking_restored() -> Iterator[None]:
    """Undo every MLflow tracking-URI change made inside: ``mlflow.set_tracking_uri`` also
    exports ``MLFLOW_TRACKING_URI`` to ``os.environ`` (for subprocesses), so a test's
    temporary store would otherwise leak into later tests' ``dvc repro`` on the same worker."""
    import mlflow

    saved = os.environ.get(TRACKING_URI)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None: back to the default
        if saved is not None:
            os.environ[TRACKING_URI] = saved


@pytest.fixture(autouse=True)
def tracking_uri_not_leaked() -> Iterator[None]:
    """Fail the test that leaves ``MLFLOW_TRACKING_URI`` different from how it found it."""
    before = os.environ.get(TRACKING_URI)
    yield
    assert os.environ.get(TRACKING_URI) == before, f"{TRACKING_URI} leaked: use tracking_restored()"


@pytest.fixture(scope="session", autouse=True)
def spark_session_stopped() -> Iterator[None]:
    """Feast's Spark offline store keeps one SparkSession per process; stop it at the end."""
    yield
    from feature_repo.offline_spark import stop_session

    stop_session()


@pytest.fixture(scope="session")
def tiny_params() -> dict[str, Any]:
    return tiny_params_dict()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, tiny_params: dict[str, Any]) -> Path:
    """A tiny ``data/`` directory built by the real generator (read-only for tests)."""
    out = tmp_path_factory.mktemp("tiny") / "data"
    build(tiny_params, out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_stream(tiny_data: Path) -> pd.DataFrame:
    """Every period's transactions, in time order."""
    parts = [pd.read_parquet(p) for p in sorted(tiny_data.glob("v*/transactions.parquet"))]
    stream = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")
    return stream.reset_index(drop=True)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local Spark session (2 cores, no UI), started by the first test that needs it."""
    from training.featurejob.session import SparkConfig, spark_session

    session = spark_session(SparkConfig("local[2]", shuffle_partitions=2, driver_memory="1g"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def feature_config(tiny_params: dict[str, Any]) -> FeatureConfig:
    return FeatureConfig.from_params(tiny_params["features"])


@pytest.fixture(scope="session")
def tiny_tables(
    spark: SparkSession, tiny_stream: pd.DataFrame, feature_config: FeatureConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Spark job's customer and terminal snapshots of the tiny stream, as pandas."""
    from training.featurejob.job import snapshot_frames

    return snapshot_frames(spark, tiny_stream, feature_config)


@pytest.fixture(scope="session")
def feast_repo(
    tmp_path_factory: pytest.TempPathFactory,
    spark: SparkSession,
    tiny_data: Path,
    feature_config: FeatureConfig,
    tiny_params: dict[str, Any],
) -> Path:
    """A copy of feature_repo/ with the tiny tables, applied and materialized by the real stage."""
    from training.featurejob.io import read_dvc_data
    from training.featurejob.job import run_feature_job
    from training.inputs.feast_store import materialize

    repo = tmp_path_factory.mktemp("feast") / "feature_repo"
    repo.mkdir()
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    terminals = pd.read_parquet(tiny_data / "terminals.parquet")
    transactions = read_dvc_data(spark, tiny_data)
    run_feature_job(transactions, terminals, feature_config, repo / "data", log=lambda _: None)
    materialize(repo, tiny_params["materialize"]["feature_service"])
    return repo


@pytest.fixture(scope="session")
def tiny_training_set(
    tmp_path_factory: pytest.TempPathFactory,
    feast_repo: Path,
    tiny_data: Path,
    tiny_params: dict[str, Any],
) -> Path:
    """The ``training_set`` stage's output for the tiny data, through the real Feast join."""
    import json

    from training.inputs.feast_store import service_features, training_store
    from training.simulation.split import TimeSplit
    from training.training_set import build_training_set

    out = tmp_path_factory.mktemp("training_set")
    store = training_store(feast_repo)
    service = tiny_params["training_set"]["feature_service"]
    split = TimeSplit.from_params(tiny_params)
    for period in ("v0", "v1"):
        transactions = pd.read_parquet(tiny_data / period / "transactions.parquet")
        frame = build_training_set(store, feast_repo, transactions, service, split, period)
        frame.to_parquet(out / f"{period}.parquet", index=False)
    features = service_features(store, service)
    (out / "features.json").write_text(json.dumps({"features": features}))
    return out


@pytest.fixture(scope="session")
def tiny_trained(tiny_training_set: Path, tiny_params: dict[str, Any]) -> Any:
    """The whole ensemble trained on the tiny training set (a few seconds)."""
    from training.inputs.frames import Frame, load_parts
    from training.modelling.fit import TrainConfig, train_ensemble

    features, parts = load_parts(tiny_training_set, "v0", ("train", "validation", "test"))
    config = TrainConfig.from_params(tiny_params["train"])
    # One thread: OpenMP spin-waits make LightGBM crawl on tiny data when cores are busy.
    result = train_ensemble(
        Frame.concat([parts["train"], parts["validation"]]),
        features,
        config,
        threads=1,
        metadata={"labels": "clean"},
        log=lambda _: None,
    )
    return result, parts, features
