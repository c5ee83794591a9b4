"""tools/images.py without building anything: commands, host mounts, the base recipe.

The end-to-end suite builds the images through the same functions; here only their pure
parts are checked, so these tests need neither Podman nor root.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tools import images
from tools.images import build, containers_env, ensure_base_image, podman

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_api_is_importable() -> None:
    assert all(callable(f) for f in (podman, containers_env, ensure_base_image, build))


def test_containers_env_points_at_the_repository_conf() -> None:
    env = containers_env({"PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    conf = tomllib.loads(Path(env["CONTAINERS_CONF"]).read_text())
    assert conf["containers"]["default_ulimits"] == []
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"


def test_build_command(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    mounts = [Path("/etc/pip.conf"), Path("/etc/ssl/certs/ca-certificates.crt")]
    command = images.build_command(
        dockerfile, tmp_path, "fraud-scoring:0.4.0", "localhost/base:1", mounts, {"REVISION": "abc"}
    )
    assert command[:4] == ["podman", "--runtime", "runc", "build"]
    for option in ("--isolation=chroot", "--network=host", "--format=docker"):
        assert option in command
    assert "--build-arg=BASE_IMAGE=localhost/base:1" in command
    assert "--build-arg=REVISION=abc" in command
    assert "--volume=/etc/pip.conf:/etc/pip.conf:ro" in command
    assert (
        "--volume=/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"
        in command
    )
    assert f"--file={dockerfile}" in command and "--tag=fraud-scoring:0.4.0" in command
    assert command[-1] == str(tmp_path)
    assert not any(c.startswith("--ignorefile") for c in command)  # none in tmp_path


def test_no_mounts_no_volume_options(tmp_path: Path) -> None:
    command = images.build_command(tmp_path / "Dockerfile", tmp_path, "t", "b")
    assert not any(c.startswith("--volume") for c in command)


@pytest.mark.parametrize(
    ("dockerfile", "ignore"),
    [("Dockerfile", ".dockerignore"), ("Dockerfile.train", "Dockerfile.train.dockerignore")],
)
def test_each_dockerfile_gets_its_own_ignore_file(dockerfile: str, ignore: str) -> None:
    """Podman reads only .dockerignore by itself; the training image needs its own file."""
    command = images.build_command(ROOT / dockerfile, ROOT, "t", "b")
    assert f"--ignorefile={ROOT / ignore}" in command


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_host_mounts_only_existing_files(tmp_path: Path) -> None:
    etc, home = tmp_path / "etc", tmp_path / "home"
    assert images.host_mounts({}, home, etc) == []

    bundle = _write(etc / "ssl" / "certs" / "ca-certificates.crt", "CA")
    constraints = _write(etc / "xdg" / "pip" / "constraints.txt", "torch<=2\n")
    xdg_conf = _write(
        etc / "xdg" / "pip" / "pip.conf",
        f"[global]\nconstraint = {constraints}\ncert = {tmp_path / 'missing.pem'}\n"
        "find-links = /nowhere\n",
    )
    user_conf = _write(home / ".config" / "pip" / "pip.conf", f"[global]\ncert = {bundle}\n")
    proxy = _write(etc / "apt" / "apt.conf.d" / "80proxy", 'Acquire::http::Proxy "http://p:3128";')
    _write(etc / "apt" / "apt.conf.d" / "70debconf", 'DPkg::Pre-Install-Pkgs {"x";};')
    extra_ca = _write(tmp_path / "corp.pem", "CA2")

    mounts = images.host_mounts({"SSL_CERT_FILE": str(extra_ca)}, home, etc)
    assert mounts == [xdg_conf, user_conf, constraints, bundle, extra_ca, proxy]


def test_pip_config_file_env_and_apt_ca(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    ca = _write(tmp_path / "apt-ca.pem")
    conf = _write(etc / "apt" / "apt.conf.d" / "90ca", f'Acquire::https::CaInfo "{ca}";\n')
    pip_conf = _write(tmp_path / "custom-pip.conf", "[global]\ntimeout = 60\n")
    env = {"PIP_CONFIG_FILE": str(pip_conf), "PIP_CERT": str(tmp_path / "absent.pem")}
    assert images.host_mounts(env, tmp_path / "home", etc) == [pip_conf, conf, ca]


def test_recipe_hash_follows_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    first = images.recipe_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", first) and images.recipe_hash() == first
    monkeypatch.setattr(images, "DEBOOTSTRAP_ARGS", (*images.DEBOOTSTRAP_ARGS[:-1], "trixie"))
    assert images.recipe_hash() != first


def test_the_stand_in_base_is_labelled_and_has_a_path() -> None:
    command = images.import_command(images.BASE_TAG, "0123abcd")
    assert command[:3] == ["podman", "--runtime", "runc"] and command[-2:] == ["-", images.BASE_TAG]
    assert f"--change=LABEL {images.RECIPE_LABEL}=0123abcd" in command
    assert any(c.startswith("--change=ENV PATH=") and "/usr/bin" in c for c in command)
    assert "python3.11" in images.DEBOOTSTRAP_ARGS[1] and "bookworm" in images.DEBOOTSTRAP_ARGS


def test_default_tags_are_the_manifests_tags() -> None:
    def new_tag(kustomization: str, name: str) -> str:
        config = yaml.safe_load((ROOT / kustomization).read_text())
        (image,) = [i for i in config["images"] if i["name"] == name]
        return f"{name}:{image['newTag']}"

    assert images.SERVING_TAG == new_tag("k8s/base/kustomization.yaml", "fraud-scoring")
    assert images.TRAINING_TAG == new_tag(
        "k8s/components/feature-pipeline/kustomization.yaml", "fraud-training"
    )


def test_cli_help_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "images.py"), "build", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--tag-serving" in done.stdout and "--context" in done.stdout
