"""The versioned datasets: expectations hold, tampering and stale params are caught, builds
repeat."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from training.data import check_datasets, data_metrics
from training.simulation.datasets import build, is_current, read_manifest


def test_tiny_datasets_pass_every_expectation(tiny_data: Path, tiny_params: dict[str, Any]) -> None:
    assert check_datasets(tiny_data, tiny_params) == []


def test_manifest_figures_match_the_files(tiny_data: Path) -> None:
    manifest = read_manifest(tiny_data)
    assert manifest is not None
    assert set(manifest["files"]) == {
        str(p.relative_to(tiny_data)) for p in tiny_data.rglob("*.parquet")
    }
    metrics = data_metrics(manifest)
    assert metrics["v0"]["rows"] == manifest["files"]["v0/transactions.parquet"]["rows"]
    assert sum(s["rows"] for s in metrics["split"].values()) == metrics["v0"]["rows"]


def test_build_is_byte_for_byte_repeatable(
    tiny_data: Path, tiny_params: dict[str, Any], tmp_path: Path
) -> None:
    again = tmp_path / "data"
    build(tiny_params, again, progress=False)
    assert (again / "manifest.json").read_bytes() == (tiny_data / "manifest.json").read_bytes()


def test_a_modified_file_is_detected(
    tiny_data: Path, tiny_params: dict[str, Any], tmp_path: Path
) -> None:
    copy_dir = tmp_path / "data"
    shutil.copytree(tiny_data, copy_dir)
    with (copy_dir / "v1/transactions.parquet").open("ab") as handle:
        handle.write(b"tampered")
    current, why = is_current(copy_dir, tiny_params)
    assert not current and "v1/transactions.parquet" in why
    assert check_datasets(copy_dir, tiny_params)[0].startswith("data/ is not current")


def test_other_params_make_the_data_stale(tiny_data: Path, tiny_params: dict[str, Any]) -> None:
    changed = copy.deepcopy(tiny_params)
    changed["simulate"]["fraud_rate"] = 0.02
    assert is_current(tiny_data, tiny_params) == (True, "up to date")
    assert not is_current(tiny_data, changed)[0]


def test_split_longer_than_v0_is_refused(tiny_params: dict[str, Any], tmp_path: Path) -> None:
    changed = copy.deepcopy(tiny_params)
    changed["split"]["test_days"] += 1
    with pytest.raises(ValueError, match="split covers"):
        build(changed, tmp_path / "data", progress=False)
