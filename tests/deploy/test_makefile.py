"""The Makefile's promises about the deployed path, read from `make -n` (nothing runs)."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT


def dry_run(target: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_demo_builds_the_model_card_before_it_serves() -> None:
    """The dashboard's Model page and the image show the card `make demo` leaves."""
    lines = dry_run("demo")
    card = next(i for i, line in enumerate(lines) if "dvc repro model_card" in line)
    serve = next(i for i, line in enumerate(lines) if "tools/demo.py" in line)
    assert card < serve


def test_e2e_runs_the_deployed_path_tests_and_ci_runs_them_through_make_test() -> None:
    assert any("pytest tests/e2e -m e2e" in line for line in dry_run("e2e"))
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    everything, deployed = [line for line in dry_run("test") if "pytest" in line]
    assert everything.endswith("pytest --ignore=tests/e2e")  # slow tests included
    assert deployed.endswith("pytest tests/e2e -m e2e")


def test_install_installs_podman_and_redis() -> None:
    lines = "\n".join(dry_run("containers"))
    for package in ("podman", "buildah", "runc", "debootstrap", "slirp4netns", "redis-server"):
        assert package in lines
