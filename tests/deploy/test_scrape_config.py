"""The GMP PodMonitoring as a Prometheus scrape config (tests/e2e/prometheus.py).

The derivation is checked on the repository's PodMonitoring and the rendered Deployment
(``promtool check config`` accepts the result), then run for real: Debian's Prometheus
scrapes a local ``python -m app`` with it, the way ``make e2e`` scrapes the pod.
"""

from __future__ import annotations

import copy
import http.client
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.services.metrics import LATENCY_BUCKETS
from benchmarks.server import free_port
from tests.e2e import prometheus
from tests.e2e.pod_runner import find
from tests.reliability.processes import serve
from tests.serving import as_request
from tools import k8s_validate

NAMESPACE = "fraud"
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The scoring Deployment's pod template in the rendered local-redis overlay (the pod
    ``make e2e`` runs)."""
    objects = k8s_validate.load_objects(k8s_validate.render(k8s_validate.TARGETS["local-redis"]))
    deployment = find(objects, "Deployment", "fraud-scoring")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    return dict(deployment["spec"]["template"])


@pytest.fixture(scope="module")
def monitoring() -> dict[str, Any]:
    return prometheus.load_pod_monitoring()


def derive(monitoring: dict[str, Any], template: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return prometheus.scrape_configs(
        monitoring, template, {8000: 18000}, pod="fraud-scoring-x", namespace=NAMESPACE, **kw
    )


def test_each_endpoint_becomes_a_job_on_the_forwarded_container_port(
    monitoring: dict[str, Any], template: dict[str, Any]
) -> None:
    (config,) = derive(monitoring, template)
    (endpoint,) = monitoring["spec"]["endpoints"]
    assert endpoint["port"] == "http"  # resolved through the container's named port 8000
    assert config["job_name"] == f"PodMonitoring/{NAMESPACE}/fraud-scoring/http"
    assert config["metrics_path"] == endpoint.get("path", "/metrics") == "/metrics"
    assert config["scheme"] == "http"
    assert config["scrape_interval"] == endpoint["interval"]
    assert config["scrape_timeout"] == endpoint["timeout"]
    (static,) = config["static_configs"]
    assert static["targets"] == ["127.0.0.1:18000"]
    metadata = {"pod": "fraud-scoring-x", "container": "api", "node": "local"}
    listed = monitoring["spec"].get("targetLabels", {}).get("metadata", [])
    assert static["labels"] == {
        "job": "fraud-scoring",
        "namespace": NAMESPACE,
        "instance": "fraud-scoring-x:http",
    } | {key: metadata[key] for key in listed}


def test_target_labels_come_from_the_pod_metadata_and_labels(
    monitoring: dict[str, Any], template: dict[str, Any]
) -> None:
    labelled = copy.deepcopy(monitoring)
    labelled["spec"]["targetLabels"] = {
        "metadata": ["pod", "container"],
        "fromPod": [{"from": "app.kubernetes.io/component", "to": "component"}],
    }
    (config,) = derive(labelled, template)
    labels = config["static_configs"][0]["labels"]
    assert (labels["pod"], labels["container"], labels["component"]) == (
        "fraud-scoring-x",
        "api",
        "api",
    )
    assert "node" not in labels


def test_promtool_accepts_the_derived_config(
    monitoring: dict[str, Any], template: dict[str, Any], tmp_path: Path
) -> None:
    for interval in (None, "1s"):  # the manifest's interval, and the e2e run's override
        path = prometheus.write_config(
            derive(monitoring, template, interval=interval), tmp_path / "p.yml"
        )
        done = prometheus.check_config(path)
        assert done.returncode == 0, done.stdout + done.stderr
    assert derive(monitoring, template, interval="1s")[0]["scrape_timeout"] == "1s"


def test_promtool_refuses_a_timeout_longer_than_the_interval(
    monitoring: dict[str, Any], template: dict[str, Any], tmp_path: Path
) -> None:
    """The check above can fail: the override caps the timeout for a reason."""
    (config,) = derive(monitoring, template, interval="1s")
    config["scrape_timeout"] = "5s"
    done = prometheus.check_config(prometheus.write_config([config], tmp_path / "p.yml"))
    assert done.returncode != 0
    assert "scrape timeout greater than scrape interval" in done.stdout + done.stderr


def test_a_monitoring_that_cannot_scrape_this_pod_is_refused(
    monitoring: dict[str, Any], template: dict[str, Any]
) -> None:
    other = copy.deepcopy(monitoring)
    other["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "worker"
    with pytest.raises(ValueError, match="does not select this pod"):
        derive(other, template)
    other = copy.deepcopy(monitoring)
    other["spec"]["endpoints"][0]["port"] = "metrics"
    with pytest.raises(KeyError, match="no port 'metrics'"):
        derive(other, template)
    other = copy.deepcopy(monitoring)
    other["spec"]["endpoints"][0]["tls"] = {"insecureSkipVerify": True}
    with pytest.raises(ValueError, match="not translated"):
        derive(other, template)
    other = copy.deepcopy(monitoring)
    other["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(ValueError, match="is in elsewhere"):
        derive(other, template)


@pytest.mark.slow
def test_prometheus_scrapes_a_local_service_with_the_derived_config(
    monitoring: dict[str, Any],
    template: dict[str, Any],
    tiny_bundle: Path,
    feast_repo: Path,
    recent: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """The same check as ``make e2e``'s, on ``python -m app`` instead of the pod."""
    app_port = free_port()
    server = serve(app_port, tiny_bundle, feast_repo, tmp_path, tmp_path / "app.log")
    rows = list(recent.head(6).itertuples())
    connection = http.client.HTTPConnection("127.0.0.1", app_port, timeout=30)

    def score(i: int) -> None:
        body = as_request(rows[i], transaction_id=f"scrape-{i}")
        connection.request("POST", "/v1/predict", json.dumps(body), HEADERS)
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()[:500]
        answer.read()

    try:
        # The route's series exist from its first request: one before the first scrape
        # gives rate() a starting sample, as the pod's earlier requests do in `make e2e`.
        score(0)
        configs = derive(monitoring, template, interval="1s")
        configs[0]["static_configs"][0]["targets"] = [f"127.0.0.1:{app_port}"]
        config = prometheus.write_config(configs, tmp_path / "prometheus.yml")
        with prometheus.running(config, tmp_path, free_port()) as prom:
            target = prom.wait_up("fraud-scoring")
            assert target["scrapeUrl"] == f"http://127.0.0.1:{app_port}/metrics"
            for i in range(1, len(rows)):
                score(i)
            own = prometheus.counted(app_port, "/v1/predict")
            assert own == len(rows)
            seen = prometheus.scraped(prom, "fraud-scoring", "/v1/predict", at_least=own)
    finally:
        connection.close()
        server.stop()
    assert seen.requests == own
    assert len(seen.buckets) == len(LATENCY_BUCKETS) + 1 and seen.buckets["+Inf"] == len(rows)
    assert 0 < seen.p99 <= LATENCY_BUCKETS[-1] and not math.isnan(seen.p99)
