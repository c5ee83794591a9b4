"""The Grafana dashboard (k8s/components/monitoring/grafana/fraud-scoring.json): importable
as is, every PromQL expression parses (``promtool check rules``), and reads only metrics
the service exposes (its live ``/metrics``) or kube-state-metrics and ``up``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.deploy.monitoring.promql import (
    EXTERNAL_METRICS,
    MONITORING,
    exposed_names,
    metric_names,
    promtool,
)

DASHBOARD = MONITORING / "grafana/fraud-scoring.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's variables, as they would be interpolated, so promtool can parse the query.
INTERPOLATED = {"$__rate_interval": "1m", "$__interval": "30s"}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def expressions(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def interpolated(expr: str) -> str:
    for variable, value in INTERPOLATED.items():
        expr = expr.replace(variable, value)
    return expr


def parse_errors(exprs: list[str], tmp_path: Path) -> str:
    """promtool's verdict on the expressions as recording rules ('' when all parse)."""
    rules = [{"record": f"dashboard:expr{i}", "expr": interpolated(e)} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    ok = done.returncode == 0 and f"SUCCESS: {len(rules)} rules found" in done.stdout
    return "" if ok else done.stdout + done.stderr


def test_dashboard_is_importable_as_is() -> None:
    board = dashboard()
    assert board["uid"] == "fraud-scoring-fleet" and board["title"]
    assert board["id"] is None, "a fixed id clashes with the target Grafana's dashboards"
    assert board["schemaVersion"] >= 36
    (variable,) = board["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) == 9
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        covered = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"])


def test_dashboard_shows_the_fleet() -> None:
    exprs = "\n".join(expressions(dashboard()))
    for needle in (
        "sum by (route, status) (rate(fraud_http_requests_total",
        "sum by (decision) (rate(fraud_decisions_total",
        "fraud_score_probability_bucket",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        'fraud_feature_misses_total{reason=~"feature_store:.*"}',
        "fraud_rules_fallback_total",
        "time() - max(fraud_feature_store_loaded_at_seconds)",
        'kube_horizontalpodautoscaler_status_current_replicas{horizontalpodautoscaler="fraud-scoring"}',
    ):
        assert needle in exprs, needle


def test_every_expression_parses(tmp_path: Path) -> None:
    exprs = expressions(dashboard())
    assert parse_errors(exprs, tmp_path) == ""
    assert "parse error" in parse_errors([*exprs, "sum(rate(fraud_decisions_total[1m])"], tmp_path)


def test_expressions_read_only_exposed_metrics(client: TestClient) -> None:
    exposed = exposed_names(client.get("/metrics").text) | EXTERNAL_METRICS
    assert "fraud_http_request_duration_seconds_bucket" in exposed
    assert "fraud_feature_store_loaded_at_seconds" in exposed
    read = set().union(*(metric_names(e) for e in expressions(dashboard())))
    assert len(read) >= 12
    assert read - exposed == set()
    typo = metric_names("sum(rate(fraud_http_request_total[1m]))")
    assert typo - exposed == {"fraud_http_request_total"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route="/x"}[$__rate_interval])))',
            {"a_bucket"},
        ),
        ('time() - max(b) > 9000 or absent(up{job="j"} == 1)', {"b", "up"}),
        ("sum by (reason) (rate(c_total[5m])) / on() group_left sum(d)", {"c_total", "d"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
