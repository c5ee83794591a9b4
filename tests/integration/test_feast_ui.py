"""``feast ui`` from the project's environment, against an applied repo.

It used to crash at start on a missing ``grpc_health`` module (its REST registry API
builds Feast's gRPC registry server); ``make feast-ui`` runs the same command. The page
and its JavaScript bundle ship in the Feast wheel (``feast/ui/build``): nothing is
downloaded at run time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.server import free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FEAST = Path(sys.executable).parent / "feast"
PROJECT = "fraud_detection"  # feature_repo/feature_store.yaml


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(port: int, path: str) -> Any:
    status, body = get(port, path)
    assert status == 200, (path, body[:500])
    return json.loads(body)


@pytest.fixture(scope="module")
def ui(feast_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``feast -c REPO ui`` on a free loopback port, up within 90 s, stopped by its pid."""
    port = free_port()
    log = tmp_path_factory.mktemp("feast-ui") / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FEAST), "-c", str(feast_repo), "ui", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if get(port, "/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield port
    finally:
        stop_process(process)


def test_the_page_and_its_bundle_are_served_from_the_wheel(ui: int) -> None:
    status, page = get(ui, "/")
    assert status == 200 and b"<html" in page
    scripts = re.findall(rb'src="(/static/js/[^"]+\.js)"', page)
    assert scripts, page[:500]
    for script in scripts:
        status, body = get(ui, script.decode())
        assert status == 200 and len(body) > 10_000, (script, status, len(body))


def test_the_project_is_listed_with_its_registry_api(ui: int) -> None:
    projects = get_json(ui, "/projects-list.json")["projects"]
    assert [p["id"] for p in projects] == [PROJECT]
    assert projects[0]["registryPath"] == "/api/v1"


def test_the_feature_services_and_views_the_service_reads_are_browsable(ui: int) -> None:
    services = get_json(ui, f"/api/v1/feature_services?project={PROJECT}")["featureServices"]
    names = {s["spec"]["name"] for s in services}
    assert {"fraud_detection_v1", "fraud_detection_v2"} <= names, names

    views = get_json(ui, f"/api/v1/feature_views?project={PROJECT}")["featureViews"]
    view_names = {v["spec"]["name"] for v in views}
    expected = {"customer_features", "terminal_features", "terminal_location", "customer_velocity"}
    assert expected <= view_names, view_names

    v2 = get_json(ui, f"/api/v1/feature_services/fraud_detection_v2?project={PROJECT}")
    used = {p["featureViewName"] for p in v2["spec"]["features"]}
    assert "customer_features" in used and "terminal_features" in used, used
