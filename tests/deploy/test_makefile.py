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
    serve = next(i for i, line in enumerate(lines) if "-m tools.demo" in line)
    assert card < serve


def test_e2e_and_abuse_run_in_make_test_which_ci_runs() -> None:
    assert any("pytest tests/e2e -m e2e" in line for line in dry_run("e2e"))
    assert any("pytest tests/abuse -m abuse" in line for line in dry_run("abuse"))
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    everything, abuse, deployed = [line for line in dry_run("test") if "pytest" in line]
    # slow tests included, on two workers; the load-shaped and the deployed-path tests in
    # processes of their own, one test at a time
    assert everything.endswith(
        "pytest --ignore=tests/e2e --ignore=tests/abuse -n 2 --dist loadfile"
    )
    assert abuse.endswith("pytest tests/abuse -m abuse")
    assert deployed.endswith("pytest tests/e2e -m e2e")


def test_install_installs_podman_and_redis() -> None:
    lines = "\n".join(dry_run("containers"))
    for package in ("podman", "buildah", "runc", "debootstrap", "slirp4netns", "redis-server"):
        assert package in lines
