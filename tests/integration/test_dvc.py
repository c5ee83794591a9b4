"""DVC on tiny data in a temporary copy: ``make data``'s sync, ``dvc repro``, push and pull."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, tiny_params_dict
from tests.projects import init_dvc_project, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COPIED = (
    "app",
    "fraud_model",
    "training",
    "feature_repo/vocabulary.py",
    "feature_repo/online_request.py",
    "feature_repo/definitions.py",
    "feature_repo/request_features.py",
    "feature_repo/velocity.py",
    "feature_repo/feast_runtime.py",
    "feature_repo/online_load.py",
    "feature_repo/online_status.py",
    "feature_repo/__init__.py",
    "feature_repo/feature_store.yaml",
    "feature_repo/.feastignore",
    "dvc.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project copy with tiny params and its own local remote."""
    root = tmp_path_factory.mktemp("dvc") / "project"
    for name in COPIED:
        source, target = ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    init_dvc_project(root)
    return root


def test_sync_builds_tracks_and_pushes(project: Path) -> None:
    out = run(project, sys.executable, "-m", "training.data", "sync")
    assert "built and tracked in data.dvc" in out
    assert (project / "data.dvc").exists()
    assert "up to date" in run(project, sys.executable, "-m", "training.data", "sync")


def test_repro_runs_the_whole_pipeline(project: Path) -> None:
    run(project, sys.executable, "-m", "dvc", "repro")
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {
        "data",
        "features",
        "materialize",
        "training_set",
        "train",
        "evaluate",
        "velocity_gain",
        "poisoning",
        "explain",
        "fairness",
        "drift",
        "audit",
        "model_card",
    }
    assert (project / "models/bundle/MANIFEST.json").exists()
    card = json.loads((project / "models/card/card.json").read_text())
    assert (
        card["bundle_version"]
        == json.loads((project / "metrics/evaluate.json").read_text())["bundle_version"]
    )
    assert all((project / "models/card/plots" / p["id"]).is_file() for p in card["plots"])
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert 0.0 < evaluation["test"]["auprc"] <= 1.0
    assert json.loads((project / "metrics/gate.json").read_text())["promoted"] is True
    gain = json.loads((project / "metrics/velocity_gain.json").read_text())
    assert gain["features"] == {"baseline": 33, "candidate": 43}
    assert set(gain["gain"]) == {"test", "drifted_v1"}
    assert "| all |" in (project / "reports/velocity_gain.md").read_text()
    assert (project / "mlflow.db").stat().st_size > 0
    poisoning = json.loads((project / "metrics/poisoning.json").read_text())
    assert len(poisoning) == 14
    for name in ("pr", "roc", "calibration"):
        assert json.loads((project / f"plots/{name}.json").read_text())
    assert (project / "metrics/data.json").exists()
    report = (project / "reports/report.md").read_text()
    for section in ("## Metrics", "## SHAP", "## Fairness", "## Drift", "## Poisoning"):
        assert section in report
    assert json.loads((project / "metrics/fairness.json").read_text())["passed"] is True
    assert (project / "reports/report.html").stat().st_size > 50_000
    assert (project / "feature_repo/data/online_store.db").stat().st_size > 0
    record = json.loads((project / "feature_repo/data/materialized.json").read_text())
    assert record["feature_service"] == "fraud_detection_v2"
    assert record["entities"]["customer_features"] > 0
    assert "Data and pipelines are up to date" in run(
        project, sys.executable, "-m", "dvc", "status"
    )


def test_pull_restores_the_exact_data(project: Path) -> None:
    tracked = (project / "data.dvc").read_text()
    shutil.rmtree(project / "data")
    shutil.rmtree(project / ".dvc/cache")
    run(project, sys.executable, "-m", "dvc", "pull", "data.dvc")
    out = run(project, sys.executable, "-m", "training.data", "sync")
    assert "up to date" in out
    assert (project / "data.dvc").read_text() == tracked


def test_sync_pulls_when_data_is_missing(project: Path) -> None:
    shutil.rmtree(project / "data")
    assert "pulled from the DVC remote" in run(
        project, sys.executable, "-m", "training.data", "sync"
    )


def test_rerun_rebuilds_a_deleted_online_store_and_keeps_the_lock(project: Path) -> None:
    lock = (project / "dvc.lock").read_text()
    (project / "feature_repo/data/online_store.db").unlink()
    run(project, sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "materialize")
    assert (project / "feature_repo/data/online_store.db").stat().st_size > 0
    assert (project / "dvc.lock").read_text() == lock
