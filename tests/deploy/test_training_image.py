"""The training image (Dockerfile.train), the retraining script and the CI-sized params."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.ci_params import merge

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.train"


def instructions() -> list[tuple[str, str]]:
    return _of(DOCKERFILE)


def test_same_pinned_base_as_the_serving_image_and_non_root() -> None:
    serving = [a for k, a in _of(ROOT / "Dockerfile") if k == "FROM"]
    training = [a for k, a in instructions() if k == "FROM"]
    assert {a.split()[0] for a in training} == {a.split()[0] for a in serving}
    users = [a for k, a in instructions() if k == "USER"]
    assert users[-1] == "10001:10001"


def _of(path: Path) -> list[tuple[str, str]]:
    """(keyword, arguments) of a Dockerfile's instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [
        (line.split(" ", 1)[0].upper(), line.split(" ", 1)[1])
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#") and " " in line
    ]


def test_installs_the_training_requirements_and_copies_existing_files() -> None:
    runs = " ".join(a for k, a in instructions() if k == "RUN")
    assert "-r /tmp/requirements-train.txt" in runs
    assert "requirements-api.txt" not in DOCKERFILE.read_text()
    for keyword, arguments in instructions():
        if keyword != "COPY":
            continue
        for source in shlex.split(arguments)[:-1]:
            matches = list(ROOT.glob(source)) if "*" in source else [ROOT / source]
            assert matches and all(m.exists() for m in matches), source


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
