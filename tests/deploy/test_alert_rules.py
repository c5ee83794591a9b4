"""The alert rules (k8s/components/monitoring/rules/fraud-scoring.rules.yaml): promtool
checks them and runs their unit tests, every alert has a test that fires it and one that
keeps it quiet, a broken rule fails those tests, and the GMP ``Rules`` object carries
exactly the same groups."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.deploy.monitoring.promql import (
    EXTERNAL_METRICS,
    MONITORING,
    ROOT,
    RULES,
    exposed_names,
    load_yaml,
    metric_names,
    promtool,
)

TESTS = sorted((ROOT / "tests/deploy/monitoring").glob("*.test.yaml"))
RUNBOOK = ROOT / "docs/deploy-gke.md"


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def _test_rules(files: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``promtool test rules`` of ``files``, one concurrent process per file (promtool
    runs the files of one call one after another), as one combined result."""
    with ThreadPoolExecutor(len(files)) as pool:
        runs = list(pool.map(lambda file: promtool("test", "rules", file, cwd=cwd), files))
    return subprocess.CompletedProcess(
        ["promtool", "test", "rules", *files],
        max(run.returncode for run in runs),
        "".join(run.stdout for run in runs),
        "".join(run.stderr for run in runs),
    )


def test_promtool_rule_tests_pass() -> None:
    assert TESTS
    done = _test_rules([str(path) for path in TESTS])
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert len(names) == 18
    assert names - fires == set(), "alerts no test fires"
    assert names - quiet == set(), "alerts no test keeps quiet"
    assert (fires | quiet) - names == set(), "tests of alerts that do not exist"


def test_every_alert_pages_with_a_runbook() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alerts():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["for"], rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        file, _, anchor = notes["runbook_url"].partition("#")
        assert file == "docs/deploy-gke.md" and anchor == f"runbook-{rule['alert'].lower()}"
        assert anchor in anchors, f"{anchor} is no heading of docs/deploy-gke.md"


def test_rules_read_only_metrics_that_exist(client: TestClient) -> None:
    exposed = exposed_names(client.get("/metrics").text) | EXTERNAL_METRICS
    read = set().union(*(metric_names(rule["expr"]) for rule in alerts()))
    assert "fraud_feature_store_loaded_at_seconds" in read
    assert read - exposed == set()


def test_gmp_rules_object_is_the_source() -> None:
    gmp = load_yaml(MONITORING / "rules.yaml")
    assert (gmp["apiVersion"], gmp["kind"]) == ("monitoring.googleapis.com/v1", "Rules")
    expected = yaml.safe_dump(load_yaml(RULES), sort_keys=False)
    assert gmp["spec"] == load_yaml(RULES), f"rules.yaml spec must be:\n{expected}"


def _mutated(tmp_path: Path, expr_of: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the unit tests against a copy of the rules with some expressions replaced: the
    files that test a replaced alert (an ``alert_rule_test`` checks only the alert it
    names, so no other file's result can change)."""
    source = load_yaml(RULES)
    for group in source["groups"]:
        for rule in group["rules"]:
            rule["expr"] = expr_of.get(rule["alert"], rule["expr"])
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(source))
    files: list[str] = []
    for path in TESTS:
        tests = load_yaml(path)
        if not expr_of.keys() & _alerts_tested(tests):
            continue
        tests["rule_files"] = ["rules.yaml"]
        (tmp_path / path.name).write_text(yaml.safe_dump(tests))
        files.append(path.name)
    assert files, "no test file tests the replaced alerts"
    return _test_rules(files, cwd=tmp_path)


def _alerts_tested(tests: dict[str, Any]) -> set[str]:
    return {
        check["alertname"] for case in tests["tests"] for check in case.get("alert_rule_test", [])
    }


def _failed_tests(output: str) -> set[str]:
    return set(re.findall(r"name: (.+?),\n", output))


@pytest.mark.parametrize(("expr", "kind"), [("vector(0) > 1", "fires"), ("vector(1)", "quiet")])
def test_a_broken_rule_fails_its_tests(tmp_path: Path, expr: str, kind: str) -> None:
    """Every alert never firing fails every 'fires' test; always firing, every 'quiet'."""
    done = _mutated(tmp_path, {rule["alert"]: expr for rule in alerts()})
    assert done.returncode != 0
    cases = [c["name"] for p in TESTS for c in load_yaml(p)["tests"]]
    expected = {name for name in cases if kind in name}
    assert len(expected) >= 8
    assert expected <= _failed_tests(done.stdout + done.stderr)


def test_a_loosened_threshold_fails(tmp_path: Path) -> None:
    """The 5xx-ratio threshold raised from 1 % to 5 % misses the 4.8 % of the firing test."""
    (rule,) = [r for r in alerts() if r["alert"] == "FraudScoringHighErrorRatio"]
    assert "> 0.01" in rule["expr"]
    done = _mutated(tmp_path, {rule["alert"]: rule["expr"].replace("> 0.01", "> 0.05")})
    assert done.returncode != 0
    assert _failed_tests(done.stdout + done.stderr) == {"FraudScoringHighErrorRatio fires"}
