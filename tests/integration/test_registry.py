"""MLflow on a temporary SQLite store: registration, aliases, the promotion gate, pyfunc."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraud_model.bundle import write_bundle
from fraud_model.scorer import EnsembleScorer
from tests.conftest import tracking_restored
from training.tracking import registry

pytestmark = pytest.mark.integration


def test_the_gate_allows_the_tolerance_and_no_more() -> None:
    assert registry.promotion_gate(0.80, None, 0.01)
    assert registry.promotion_gate(0.80, 0.805, 0.01)
    assert registry.promotion_gate(0.90, 0.80, 0.01)
    assert not registry.promotion_gate(0.78, 0.80, 0.01)


@pytest.fixture()
def mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with tracking_restored():
        yield registry.configure("test-experiment", root=tmp_path)


def test_versions_become_challenger_and_only_good_ones_champion(
    mlflow: Any, tiny_trained: Any, tmp_path: Path
) -> None:
    result, parts, features = tiny_trained
    bundle_dir = tmp_path / "bundle"
    write_bundle(result.bundle, bundle_dir)
    example = pd.DataFrame(parts["test"].x[:5], columns=features)
    name = "fraud-ensemble-test"

    with mlflow.start_run():
        first = registry.log_model_version(mlflow, bundle_dir, name, example)
    assert registry.alias_version(mlflow, name, registry.CHALLENGER) == first
    gate = registry.apply_gate(mlflow, name, first, 0.80, None, 0.01)
    assert gate.promoted and registry.alias_version(mlflow, name, registry.CHAMPION) == first

    with mlflow.start_run():
        worse = registry.log_model_version(mlflow, bundle_dir, name, example)
    gate = registry.apply_gate(mlflow, name, worse, 0.70, 0.80, 0.01)
    assert not gate.promoted and "fails" in gate.reason
    assert registry.alias_version(mlflow, name, registry.CHALLENGER) == worse
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == first

    with mlflow.start_run():
        close = registry.log_model_version(mlflow, bundle_dir, name, example)
    assert registry.apply_gate(mlflow, name, close, 0.795, 0.80, 0.01).promoted
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == close

    # The registered pyfunc scores exactly like the service's scorer.
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    out = model.predict(example)
    expected = EnsembleScorer(result.bundle).score(parts["test"].x[:5])
    assert np.allclose(out["fraud_probability"].to_numpy(), expected.probability)
    assert list(out["decision"]) == expected.decisions

    downloaded = registry.download_bundle(mlflow, name, close)
    assert (downloaded / "MANIFEST.json").is_file()
    shutil.rmtree(downloaded.parent.parent, ignore_errors=True)


def test_the_service_loads_the_champion_by_alias(
    mlflow: Any, tiny_trained: Any, tmp_path: Path, client_for: Any
) -> None:
    result, parts, features = tiny_trained
    bundle_dir = tmp_path / "bundle"
    version = write_bundle(result.bundle, bundle_dir)
    example = pd.DataFrame(parts["test"].x[:5], columns=features)
    name = "fraud-ensemble-served"
    with mlflow.start_run():
        registered = registry.log_model_version(mlflow, bundle_dir, name, example)
    registry.apply_gate(mlflow, name, registered, 0.8, None, 0.01)

    uri = mlflow.get_tracking_uri()
    card = client_for(bundle_uri=f"models:/{name}@champion", mlflow_tracking_uri=uri)
    model = card.get("/v1/model").json()
    assert (model["version"], model["alias"]) == (version, "champion")
    assert model["registry_version"] == registered
    assert model["decision_source"] == "model"

    missing = client_for(bundle_uri=f"models:/{name}@no-such-alias", mlflow_tracking_uri=uri)
    model = missing.get("/v1/model").json()
    assert model["decision_source"] == "rules_fallback"
    assert "cannot fetch" in model["problem"]
