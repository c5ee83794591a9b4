"""Debian's Prometheus scraping a pod the way Google Managed Prometheus would.

:func:`scrape_configs` turns the GMP ``PodMonitoring`` of k8s/components/monitoring into
Prometheus ``scrape_configs``: one job per endpoint, its port name resolved to the
container port of the rendered pod template and then to the address that port is
forwarded to. On GKE the GMP operator does the discovery instead (every pod matching
``spec.selector`` in the PodMonitoring's namespace); here there is one pod, so the
target is static and the selector is checked against the pod's labels.
:class:`Prometheus` runs ``prometheus`` on that config, bounded in time and stopped by
its pid.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.server import metrics_text, stop_process
from tests.conftest import ROOT

PODMONITORING = ROOT / "k8s" / "components" / "monitoring" / "podmonitoring.yaml"
# What this translation understands; anything else (TLS, auth, relabeling, params) is
# refused rather than silently scraped differently from GKE.
ENDPOINT_FIELDS = {"port", "path", "scheme", "interval", "timeout"}


def load_pod_monitoring(path: Path = PODMONITORING) -> dict[str, Any]:
    """The one ``PodMonitoring`` document of ``path``."""
    (monitoring,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if (monitoring["apiVersion"], monitoring["kind"]) != (
        "monitoring.googleapis.com/v1",
        "PodMonitoring",
    ):
        raise ValueError(f"{path}: not a monitoring.googleapis.com/v1 PodMonitoring")
    return dict(monitoring)


def named_port(template: Mapping[str, Any], port: str | int) -> tuple[str, int]:
    """(container name, containerPort) of the pod template's port ``port`` (name or number)."""
    for container in template["spec"]["containers"]:
        for declared in container.get("ports", []):
            if port in (declared.get("name"), declared["containerPort"]):
                return container["name"], int(declared["containerPort"])
    raise KeyError(f"the pod template declares no port {port!r}")


def scrape_configs(
    monitoring: Mapping[str, Any],
    template: Mapping[str, Any],
    host_ports: Mapping[int, int],
    *,
    pod: str,
    namespace: str,
    host: str = "127.0.0.1",
    node: str = "local",
    interval: str | None = None,
) -> list[dict[str, Any]]:
    """Prometheus scrape configs for ``monitoring``'s endpoints on one pod of ``template``.

    ``host_ports`` maps a containerPort to where it is reachable (the pod runner's
    forwarding). ``interval`` overrides every endpoint's interval (and caps its timeout)
    so a test needs not wait a production interval for its samples. Labels follow GMP's:
    ``job`` is the PodMonitoring's name, ``instance`` is ``pod:port``, ``namespace``
    always, then ``targetLabels`` (``metadata`` and ``fromPod``).
    """
    spec = monitoring["spec"]
    name = monitoring["metadata"]["name"]
    declared = monitoring["metadata"].get("namespace")
    if declared not in (None, namespace):
        raise ValueError(f"PodMonitoring {name} is in {declared}, the pod in {namespace}")
    selector = spec["selector"]
    if set(selector) - {"matchLabels"}:
        raise ValueError(f"selector fields not translated: {sorted(set(selector))}")
    labels = template["metadata"].get("labels", {})
    unmatched = {k: v for k, v in selector["matchLabels"].items() if labels.get(k) != v}
    if unmatched:
        raise ValueError(f"PodMonitoring {name} does not select this pod: {unmatched}")

    configs = []
    for endpoint in spec["endpoints"]:
        if set(endpoint) - ENDPOINT_FIELDS:
            raise ValueError(f"endpoint fields not translated: {sorted(set(endpoint))}")
        port = endpoint["port"]
        container, container_port = named_port(template, port)
        target_labels: dict[str, str] = {"job": name, "namespace": namespace}
        target_labels["instance"] = f"{pod}:{port}"
        metadata = {"pod": pod, "container": container, "node": node}
        for key in spec.get("targetLabels", {}).get("metadata", []):
            # GMP fills `container` only for a port referenced by name.
            if key not in metadata:
                raise ValueError(f"target label {key} not translated")
            if key != "container" or isinstance(port, str):
                target_labels[key] = metadata[key]
        for mapping in spec.get("targetLabels", {}).get("fromPod", []):
            if mapping["from"] in labels:
                target_labels[mapping.get("to", mapping["from"])] = labels[mapping["from"]]
        every = interval or endpoint.get("interval", "1m")  # the CRD's default
        config: dict[str, Any] = {
            "job_name": f"PodMonitoring/{namespace}/{name}/{port}",
            "scrape_interval": every,
            "metrics_path": endpoint.get("path", "/metrics"),
            "scheme": endpoint.get("scheme", "http"),
            "static_configs": [
                {"targets": [f"{host}:{host_ports[container_port]}"], "labels": target_labels}
            ],
        }
        if "timeout" in endpoint:
            timeout = endpoint["timeout"]
            config["scrape_timeout"] = (
                every if interval and seconds(every) < seconds(timeout) else timeout
            )
        configs.append(config)
    return configs


def seconds(duration: str) -> float:
    """A Prometheus duration of one unit (``15s``, ``1m``, ``500ms``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if duration.endswith(unit) and duration[: -len(unit)].isdigit():
            return int(duration[: -len(unit)]) * units[unit]
    raise ValueError(f"not a one-unit Prometheus duration: {duration}")


def write_config(configs: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"scrape_configs": configs}, sort_keys=False))
    return path


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check config PATH``."""
    return subprocess.run(
        ["promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@dataclass
class Prometheus:
    """A running ``prometheus`` and its HTTP API on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as answer:  # nosec B310
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        return list(self.api("query", query=expr)["result"])

    def wait_up(self, job: str, timeout: float = 30) -> dict[str, Any]:
        """The active target of ``job`` once its last scrape succeeded."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            targets = self.api("targets", state="active")["activeTargets"]
            mine = [t for t in targets if t["labels"].get("job") == job]
            if mine and mine[0]["health"] == "up":
                return dict(mine[0])
            assert time.monotonic() < deadline, (mine, self.log.read_text()[-3000:])
            time.sleep(0.3)


# The service's request counter and latency histogram (app/services/metrics.py).
REQUESTS = 'sum(fraud_http_requests_total{{job="{job}",route="{route}"}})'
BUCKETS = 'fraud_http_request_duration_seconds_bucket{{job="{job}",route="{route}"}}'
P99 = "histogram_quantile(0.99, sum by (le) (rate({buckets}[1m])))"


@dataclass
class Scraped:
    """What Prometheus holds for one route: its request count, the cumulative count per
    latency bucket bound (``le``), and the p99 latency over the last minute (seconds)."""

    requests: float
    buckets: dict[str, float]
    p99: float


def counted(port: int, route: str) -> float:
    """The service's own request counter for ``route``, read from its /metrics directly."""
    text = metrics_text(port)
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fraud_http_requests_total{") and f'route="{route}"' in line
    )


def scraped(
    prom: Prometheus, job: str, route: str, at_least: float, timeout: float = 20
) -> Scraped:
    """Poll until a scrape of ``job`` has counted ``at_least`` requests on ``route``, then
    read the histogram of the same scrape."""
    deadline = time.monotonic() + timeout
    while True:
        result = prom.query(REQUESTS.format(job=job, route=route))
        if result and float(result[0]["value"][1]) >= at_least:
            break
        assert time.monotonic() < deadline, (result, at_least)
        time.sleep(0.3)
    buckets = BUCKETS.format(job=job, route=route)
    by_le: dict[str, float] = {}
    for series in prom.query(f"sum by (le) ({buckets})"):
        by_le[series["metric"]["le"]] = float(series["value"][1])
    p99 = prom.query(P99.format(buckets=buckets))
    return Scraped(
        float(result[0]["value"][1]), by_le, float(p99[0]["value"][1]) if p99 else float("nan")
    )


@contextmanager
def running(config: Path, root: Path, port: int, timeout: float = 30) -> Iterator[Prometheus]:
    """``prometheus`` on ``config`` with its TSDB under ``root``, ready within ``timeout``
    seconds, stopped by its pid."""
    log = root / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Prometheus(process, port, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        yield server
    finally:
        stop_process(process)
