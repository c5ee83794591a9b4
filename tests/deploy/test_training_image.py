"""The training image (Dockerfile.train), the retraining script and the CI-sized params."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_dockerfile import assert_pinned, base_images, global_args, of
from tools.ci_params import merge

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.train"


def test_same_pinned_base_as_the_serving_image_and_non_root() -> None:
    assert [a.split()[0] for a in of("FROM", DOCKERFILE)] == ["${BASE_IMAGE}"]
    assert_pinned(global_args(DOCKERFILE)["BASE_IMAGE"])
    assert set(base_images(DOCKERFILE)) == set(base_images())
    assert of("USER", DOCKERFILE)[-1] == "10001:10001"


def test_installs_the_training_requirements_and_copies_existing_files() -> None:
    runs = " ".join(of("RUN", DOCKERFILE))
    assert "-r /tmp/requirements-train.txt" in runs
    assert "requirements-api.txt" not in DOCKERFILE.read_text()
    for arguments in of("COPY", DOCKERFILE):
        for source in shlex.split(arguments)[:-1]:
            matches = list(ROOT.glob(source)) if "*" in source else [ROOT / source]
            assert matches and all(m.exists() for m in matches), source


def test_carries_the_pipeline_and_the_model_package_not_the_service() -> None:
    """Training stands on fraud_model/, never on the service: app/ stays out of the image."""
    copied = {shlex.split(a)[0] for a in of("COPY", DOCKERFILE)}
    assert {"fraud_model/", "training/"} <= copied
    assert not any(source.startswith("app") for source in copied)
    ignore = (ROOT / "Dockerfile.train.dockerignore").read_text().splitlines()
    assert "!fraud_model/**" in ignore and not any(line.startswith("!app") for line in ignore)


def test_retrain_script_parses_and_needs_its_settings(tmp_path: Path) -> None:
    script = ROOT / "tools/retrain.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    done = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "WORKSPACE": str(tmp_path)},
        check=False,
    )
    assert done.returncode != 0 and "DVC_REMOTE_URL" in done.stderr


def test_ci_params_merge_known_keys_and_refuse_unknown_ones() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    merge(params, yaml.safe_load((ROOT / "params.ci.yaml").read_text()))
    assert params["simulate"]["n_customers"] == 500
    assert params["simulate"]["v0_days"] == 100  # untouched
    with pytest.raises(KeyError, match="simulate.n_cusomers"):
        merge(params, {"simulate": {"n_cusomers": 1}})
