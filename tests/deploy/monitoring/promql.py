"""PromQL helpers for the monitoring tests: the metric names an expression reads, the names
the service exposes, and ``promtool`` runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "k8s/components/monitoring"
RULES = MONITORING / "rules/fraud-scoring.rules.yaml"
# kube-state-metrics series (GKE's managed package) and the scrape's own `up`.
EXTERNAL_METRICS = frozenset(
    {
        "up",
        "kube_deployment_status_replicas_available",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
    }
)
SUFFIXES = {
    "counter": ("",),  # the text format's TYPE line already names the _total sample
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NOISE = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and labels left out)."""
    text = _GROUPING.sub(" ", _STRING.sub('""', expr))
    text = _NOISE.sub(" ", text)
    return {m for m in _IDENT.findall(text) if m.lower() not in KEYWORDS}


def exposed_names(exposition: str) -> set[str]:
    """Sample names of a ``/metrics`` text, from its ``# TYPE`` lines (a labelled metric
    with no sample yet still has them)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.update(name + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path is not None, "promtool is not on PATH (`make install` installs Prometheus)"
    return subprocess.run(  # noqa: S603  # promtool from PATH, fixed arguments
        [path, *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
