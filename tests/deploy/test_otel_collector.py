"""The OpenTelemetry Collector as rendered for each overlay: the pods' OTLP endpoint
reaches its OTLP/HTTP receiver, and the traces pipeline is wired (every component
defined, memory_limiter first, batch last before export, Cloud Trace on GKE).

No collector binary runs on this machine (Debian has no package); what the collector
itself would refuse at start (an undefined component in a pipeline) is checked here,
and the spans' path into a real OTLP/HTTP receiver by tests/api/test_otlp_export.py."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tools import k8s_validate

OVERLAYS = tuple(k8s_validate.TARGETS)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(k8s_validate.load_objects(k8s_validate.render(k8s_validate.TARGETS[overlay])))


def one(overlay: str, kind: str, prefix: str) -> dict[str, Any]:
    (found,) = [
        o
        for o in rendered(overlay)
        if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)
    ]
    return found


def collector_config(overlay: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the collector container, its parsed config file from the mounted ConfigMap)."""
    pod = one(overlay, "Deployment", "otel-collector")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (config_arg,) = [a for a in container["args"] if a.startswith("--config=")]
    path = config_arg.removeprefix("--config=")
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = one(overlay, "ConfigMap", "otel-collector-config")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    key = path.removeprefix(mount["mountPath"] + "/")
    return container, yaml.safe_load(config_map["data"][key])


def port_of(container: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pods_otlp_endpoint_reaches_the_collector_s_http_receiver(overlay: str) -> None:
    container, config = collector_config(overlay)
    settings = one(overlay, "ConfigMap", "fraud-scoring-settings")["data"]
    endpoint = urlsplit(settings["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert settings["OTEL_TRACES_EXPORTER"] == "otlp" and endpoint.scheme == "http"
    service = one(overlay, "Service", "otel-collector")
    assert endpoint.hostname == service["metadata"]["name"]
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == endpoint.port]
    receiver = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert int(receiver.rsplit(":", 1)[1]) == port_of(container, service_port["targetPort"])
    assert (
        service["spec"]["selector"].items()
        <= (
            one(overlay, "Deployment", "otel-collector")["spec"]["template"]["metadata"]["labels"]
        ).items()
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_traces_pipeline_is_wired_and_bounded(overlay: str) -> None:
    container, config = collector_config(overlay)
    (pipeline,) = config["service"]["pipelines"].values()
    assert list(config["service"]["pipelines"]) == ["traces"]
    for section in ("receivers", "processors", "exporters"):
        assert pipeline[section], section
        assert set(pipeline[section]) <= set(config[section]), f"undefined {section}"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    assert pipeline["receivers"] == ["otlp"]
    # The memory limiter refuses data before anything buffers it; batch is the last step.
    assert pipeline["processors"][0] == "memory_limiter"
    assert pipeline["processors"][-1] == "batch"
    limiter = config["processors"]["memory_limiter"]
    assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 90
    assert container["resources"]["limits"]["memory"]  # the percentages are of this limit
    health = config["extensions"]["health_check"]["endpoint"]
    health_port = int(health.rsplit(":", 1)[1])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert port_of(container, container[probe]["httpGet"]["port"]) == health_port
    if overlay == "gke":
        assert pipeline["exporters"] == ["googlecloud"]
        assert "resourcedetection" in pipeline["processors"]
        assert config["processors"]["resourcedetection"]["detectors"] == ["gcp"]
    else:
        assert pipeline["exporters"] == ["debug"]
