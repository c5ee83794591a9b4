"""The audit report: every section from real stage outputs on the tiny data, plots linked
and inlined, the base-branch diff when present, and the fairness gate's exit code."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from training import audit, drift, evaluate, explain, fairness
from training.poisoning import plot as plot_poisoning

SECTIONS = ("## Metrics", "## SHAP", "## Fairness", "## Drift", "## Poisoning")


def poisoning_rows() -> dict[str, dict[str, Any]]:
    """A two-variant poisoning table in the stage's format (the real study trains 14
    ensembles; tests/integration/test_dvc.py runs it on the tiny data)."""
    rows = {}
    for labels, model, rate, auprc in (
        ("clean", None, 0.0, 0.80),
        ("v0_train_uniform_20pct", "uniform", 0.2, 0.70),
    ):
        for defense in (False, True):
            rows[f"{labels}/defense_{'on' if defense else 'off'}"] = {
                "labels": labels,
                "flip_model": model,
                "rate": rate,
                "defense": defense,
                "auprc": auprc - 0.01 * defense,
                "recall_at_budget": 0.8,
                "precision_at_alert_tier": 0.5,
                "recall_at_alert_tier": 0.8,
                "f1_at_alert_tier": 0.6,
                "flipped_labels": int(rate * 1000),
                **(
                    {"flagged": 10, "flagged_precision": 0.5, "flagged_recall": 0.4}
                    if defense
                    else {}
                ),
            }
    return rows


@pytest.fixture(scope="module")
def workspace(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_training_set: Path,
    tiny_bundle: Path,
    tiny_data: Path,
    tiny_params: dict[str, Any],
) -> Path:
    """metrics/ and reports/ as the pipeline leaves them, from the real stages."""
    root = tmp_path_factory.mktemp("audit")
    metrics, reports = root / "metrics", root / "reports"
    metrics.mkdir()
    params = root / "params.yaml"
    params.write_text(
        yaml.safe_dump({**tiny_params, "explain": {**tiny_params["explain"], "sample_rows": 300}})
    )
    common = ["--training-set", str(tiny_training_set), "--bundle", str(tiny_bundle)]
    evaluate.main(
        [
            *common,
            "--metrics",
            str(metrics / "evaluate.json"),
            "--plots",
            str(root / "plots"),
            "--no-mlflow",
            "--params",
            str(params),
        ]
    )
    explain.main(
        [
            *common,
            "--params",
            str(params),
            "--out",
            str(reports / "shap"),
            "--metrics",
            str(metrics / "shap.json"),
        ]
    )
    fairness.main(
        [
            *common,
            "--params",
            str(params),
            "--customers",
            str(tiny_data / "customers.parquet"),
            "--out",
            str(reports / "fairness"),
            "--metrics",
            str(metrics / "fairness.json"),
        ]
    )
    drift.main([*common, "--out", str(metrics / "drift.json"), "--plots", str(reports / "drift")])
    rows = poisoning_rows()
    (metrics / "poisoning.json").write_text(json.dumps(rows))
    plot_poisoning(list(rows.values()), reports / "poisoning.png", 100)
    return root


def run_audit(root: Path, bundle: Path, *extra: str) -> None:
    audit.main(
        [
            "--metrics-dir",
            str(root / "metrics"),
            "--bundle",
            str(bundle),
            "--out",
            str(root / "reports/report.md"),
            "--metrics-diff",
            str(root / "reports/metrics-diff.md"),
            *extra,
        ]
    )


def test_report_renders_every_section_from_the_runs_numbers(
    workspace: Path, tiny_bundle: Path
) -> None:
    run_audit(workspace, tiny_bundle)
    report = (workspace / "reports/report.md").read_text()
    positions = [report.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert report.count("> **Look at:**") == len(SECTIONS)

    evaluation = json.loads((workspace / "metrics/evaluate.json").read_text())
    assert (
        f"| AUPRC | {evaluation['test']['auprc']:.4f} | {evaluation['drifted_v1']['auprc']:.4f} |"
        in report
    )
    shap = json.loads((workspace / "metrics/shap.json").read_text())
    assert f"`{shap['global'][0]['feature']}`" in report
    features = json.loads((workspace / "metrics/drift.json").read_text())["features"]
    assert f"{len(features['drifted'])} of {len(features['features'])} features" in report
    fair = json.loads((workspace / "metrics/fairness.json").read_text())
    for name, result in fair["attributes"].items():
        assert f"### {name}: DPD {result['dpd']:.4f}, EOD {result['eod']:.4f}" in report
    assert "v0_train_uniform_20pct" in report

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert {"shap/bar.png", "shap/beeswarm.png", "drift/psi.png", "poisoning.png"} <= set(links)
    assert all((workspace / "reports" / link).is_file() for link in links)
    assert "No base-branch diff here" in report


def test_html_is_self_contained(workspace: Path, tiny_bundle: Path) -> None:
    run_audit(workspace, tiny_bundle)
    html = (workspace / "reports/report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert html.count("<h2>") == len(SECTIONS)
    assert "<table>" in html and "<script" not in html


def test_the_base_branch_diff_goes_under_metrics(workspace: Path, tiny_bundle: Path) -> None:
    row = "| metrics/evaluate.json | test.auprc | 0.84 | 0.85 | 0.01 |"
    diff = f"| Path | Metric | HEAD | workspace | Change |\n|---|---|---|---|---|\n{row}\n"
    (workspace / "reports/metrics-diff.md").write_text(diff)
    try:
        run_audit(workspace, tiny_bundle)
    finally:
        (workspace / "reports/metrics-diff.md").unlink()
    report = (workspace / "reports/report.md").read_text()
    assert row in report
    assert report.index("metrics/evaluate.json | test.auprc") < report.index("## SHAP")


def test_a_failed_fairness_gate_exits_1_after_writing_the_report(
    workspace: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    failing = tmp_path / "failing"
    shutil.copytree(workspace, failing)
    path = failing / "metrics/fairness.json"
    result = json.loads(path.read_text())
    violation = "age_band: demographic parity difference 0.0500 > 0.01"
    result.update(passed=False, violations=[violation])
    path.write_text(json.dumps(result))
    (failing / "reports/report.md").unlink(missing_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        run_audit(failing, tiny_bundle)
    assert exit_info.value.code == 1
    assert f"❌ FAIL: {violation}" in (failing / "reports/report.md").read_text()


def test_a_missing_stage_output_names_the_stage(
    workspace: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(workspace, partial)
    (partial / "metrics/drift.json").unlink()
    with pytest.raises(FileNotFoundError, match="dvc repro drift"):
        run_audit(partial, tiny_bundle)
