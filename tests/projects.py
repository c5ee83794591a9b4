"""Project copies for tests that run the pipeline the way a user does (DVC, git)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(cwd: Path, *args: str, timeout: float | None = None) -> str:
    """Run a command in ``cwd`` with this interpreter's bin first on PATH (DVC stages say
    ``python``); fail the test with its output when it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout + done.stderr


def init_dvc_project(root: Path) -> None:
    """``git init`` and a local DVC remote beside the copy, as a clone with a remote has."""
    run(root, "git", "init", "-q")
    run(
        root,
        sys.executable,
        "-m",
        "dvc",
        "remote",
        "add",
        "-f",
        "-d",
        "local",
        str(root.parent / "remote"),
    )
