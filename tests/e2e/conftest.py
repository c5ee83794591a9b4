"""The deployed path's fixtures: a tiny pipeline run, the two images, Redis, the rendering.

Everything is built as a user builds it: a copy of the repository (its tracked files)
with tiny parameters runs ``make data``'s sync and ``dvc repro evaluate`` (what ``make
train`` runs), and the images are built from that copy with their own Dockerfiles
(tools/images.py). The manifests come from ``kubectl kustomize k8s/overlays/local-redis``;
the online store is a TLS redis-server reached the way pods reach Memorystore
(``ssl=true``, the instance's CA, no host name check).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.postgres_server import PostgresServer
from benchmarks.server import free_port
from tests import redis_server as redis_fixtures
from tests.conftest import ROOT, tiny_params_dict
from tests.e2e.pod_runner import render
from tests.projects import init_dvc_project, run
from tools.images import build, containers_env, ensure_base_image

# Debian's redis-server with TLS only and a certificate made like Memorystore's (its
# subjectAltName is not the address the pods connect to), standing in for Memorystore.
redis_tls = redis_fixtures.redis_tls

OVERLAY = ROOT / "k8s" / "overlays" / "local-redis"
SERVING = "fraud-scoring:0.4.0"  # the names the manifests use
TRAINING = "fraud-training:0.4.0"
E2E_TAG = "e2e"


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="session")
def timings() -> dict[str, float]:
    """Seconds per step, printed at the end of the session (the closing note's numbers)."""
    measured: dict[str, float] = {}
    yield measured
    print("\ne2e timings:", {k: round(v, 1) for k, v in measured.items()})


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]) -> Path:
    """A clone-like copy of the repository after ``make train`` on tiny data."""
    began = time.monotonic()
    root = tmp_path_factory.mktemp("e2e") / "project"
    for name in tracked_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
        target.chmod((ROOT / name).stat().st_mode)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    (root / "data.dvc").unlink(missing_ok=True)
    init_dvc_project(root)
    run(root, sys.executable, "-m", "training.data", "sync", timeout=1200)
    run(root, sys.executable, "-m", "dvc", "repro", "evaluate", timeout=1200)
    assert (root / "models" / "bundle" / "MANIFEST.json").is_file()
    timings["tiny pipeline (make data + dvc repro evaluate)"] = time.monotonic() - began
    return root


def podman_runner(env: dict[str, str]) -> Any:
    def podman(
        *args: str, check: bool = True, timeout: float | None = 600
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", "--runtime", "runc", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])} failed: {done.stderr[-3000:]}")
        return done

    return podman


@pytest.fixture(scope="session")
def podman() -> Any:
    return podman_runner(containers_env())


def image_id(tag: str) -> str | None:
    done = podman_runner(containers_env())(
        "image", "inspect", "--format", "{{.Id}}", tag, check=False
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


@pytest.fixture(scope="session")
def images(workspace: Path, timings: dict[str, float]) -> dict[str, str]:
    """The two images built from the workspace; manifest name -> local image. The previous
    run's images are removed once replaced (their cached layers stay for the next build)."""
    began = time.monotonic()
    base = ensure_base_image()
    timings["base image"] = time.monotonic() - began
    built = {}
    for dockerfile, name in (("Dockerfile", SERVING), ("Dockerfile.train", TRAINING)):
        tag = f"localhost/{name.split(':')[0]}:{E2E_TAG}"
        began = time.monotonic()
        previous = image_id(tag)
        result = build(workspace / dockerfile, workspace, tag, base=base)
        if previous is not None and previous != image_id(tag):
            podman_runner(containers_env())("rmi", previous, check=False)
        timings[f"build {dockerfile}"] = time.monotonic() - began
        timings[f"size {dockerfile} (MB)"] = result.size_bytes / 1e6
        built[name] = tag
    return built


@pytest.fixture(scope="session")
def record_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The system of record: Debian's PostgreSQL on the host's loopback (Cloud SQL on GKE),
    which pods reach as 10.0.2.2 like the Redis."""
    server = PostgresServer(tmp_path_factory.mktemp("record-db"), free_port())
    server.init()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def rendered(record_db: PostgresServer) -> list[dict[str, Any]]:
    """The overlay's rendering, its RECORD_URL pointed at this run's PostgreSQL port."""
    objects = render(OVERLAY)
    for obj in objects:
        data = obj.get("data") or {}
        if obj["kind"] == "ConfigMap" and "RECORD_URL" in data:
            assert data["RECORD_URL"] == "postgresql://fraud_app@10.0.2.2:5432/fraud"
            data["RECORD_URL"] = f"postgresql://fraud_app@10.0.2.2:{record_db.port}/fraud"
    return objects


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("e2e-run")
