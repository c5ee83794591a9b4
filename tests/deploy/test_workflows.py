"""The GitHub Actions workflows keep their guarantees (read offline: nothing here runs them).

- ci: the docker job builds the serving image from the CI-sized pipeline it ran itself,
  smoke-tests the container with tools/smoke.py, and always prints and removes it.
- deploy: only a commit for which ci passed on a push to main; smoke through HTTPS with
  tools/smoke.py and the API key from a secret.
- audit: an OIDC token only in the job that pulls the data, the fork fallback to simulated
  data with its notice first, no plot uploaded to a public asset host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github/workflows"


def load(name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # PyYAML reads the key `on` as True (YAML 1.1).
    data["on"] = data.pop(True, data.get("on"))
    return data


def runs(job: dict[str, Any]) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def step_index(job: dict[str, Any], predicate: Any) -> int:
    matches = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    assert matches, "no matching step"
    return matches[0]


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action + "@")


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("name", all_workflows())
def test_top_level_permissions_are_read_only(name: str) -> None:
    assert load(name)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("name", all_workflows())
def test_id_token_only_where_workload_identity_is_used(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        wif = any(uses(s, "google-github-actions/auth") for s in job.get("steps", []))
        has_token = job.get("permissions", {}).get("id-token") == "write"
        assert has_token == wif, f"{name}:{job_name}: id-token write iff it authenticates"


@pytest.mark.parametrize("name", all_workflows())
def test_no_public_asset_host_and_no_cml_publish(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    code = code.replace("\\\n", " ")  # shell line continuations
    assert "asset.cml.dev" not in code
    assert "cml publish" not in code and "cml-publish" not in code
    for command in re.findall(r"cml comment (?:create|update)[^\n]*", code):
        # --publish is CML's default and uploads to asset.cml.dev; --native throws on GitHub.
        assert "--no-publish" in command, command
        assert "--native" not in command and "--publish-url" not in command


def test_ci_docker_job_builds_from_its_own_ci_sized_pipeline() -> None:
    job = load("ci.yml")["jobs"]["docker"]
    commands = runs(job)
    pipeline = step_index(job, lambda s: "tools/ci_params.py" in s.get("run", ""))
    build = step_index(
        job,
        lambda s: uses(s, "docker/build-push-action") and s["with"]["file"] == "Dockerfile",
    )
    assert pipeline < build
    script = commands[pipeline]
    assert script.index("tools/ci_params.py") < script.index("make train")
    assert "training.data build" in script
    # nothing restores pipeline outputs from elsewhere
    assert not any("dvc pull" in c for c in commands)


def test_ci_docker_job_smoke_tests_the_container_with_tools_smoke() -> None:
    job = load("ci.yml")["jobs"]["docker"]
    commands = runs(job)
    start = next(i for i, c in enumerate(commands) if "docker run -d" in c)
    assert "-p 127.0.0.1:8000:8000" in commands[start]
    smoke = next(i for i, c in enumerate(commands) if "tools/smoke.py" in c)
    assert start < smoke
    assert re.search(r"python3 tools/smoke\.py --url http://127\.0\.0\.1:8000", commands[smoke])
    assert "curl" not in commands[smoke]
    cleanup = next(i for i, s in enumerate(job["steps"]) if "docker rm -f" in s.get("run", ""))
    assert job["steps"][cleanup]["if"] == "always()"
    assert "docker logs" in commands[cleanup]


def test_ci_keeps_the_all_green_gate() -> None:
    jobs = load("ci.yml")["jobs"]
    gate = jobs["all-green"]
    assert gate["if"] == "always()"
    assert set(gate["needs"]) == set(jobs) - {"all-green"}


def test_deploy_runs_only_after_ci_passed_for_the_same_commit() -> None:
    wf = load("deploy.yml")
    assert "push" not in wf["on"] or set(wf["on"]["push"]) == {"tags"}
    trigger = wf["on"]["workflow_run"]
    assert trigger["workflows"] == ["ci"] and trigger["types"] == ["completed"]
    assert "workflow_dispatch" in wf["on"]
    gate = wf["jobs"]["gate"]
    for condition in (
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
    ):
        assert condition in gate["if"]
    check = " ".join(runs(gate))
    assert "actions/workflows/ci.yml/runs" in check and "head_sha" in check
    assert "status=success" in check
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "gate"
    checkout = next(s for s in deploy["steps"] if uses(s, "actions/checkout"))
    assert checkout["with"]["ref"] == "${{ needs.gate.outputs.sha }}"
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "${{ github.sha }}" not in text.split("deploy:\n    needs: gate")[1]


def test_deploy_smoke_tests_through_https_with_tools_smoke() -> None:
    deploy = load("deploy.yml")["jobs"]["deploy"]
    smoke = next(s for s in deploy["steps"] if "tools/smoke.py" in s.get("run", ""))
    assert '--url "$PUBLIC_URL"' in smoke["run"]
    assert "--api-key-env SMOKE_API_KEY" in smoke["run"]
    assert smoke["env"]["SMOKE_API_KEY"] == "${{ secrets.SMOKE_API_KEY }}"
    assert "--insecure" not in smoke["run"]
    names = [s.get("name", "") for s in deploy["steps"]]
    assert names.index(smoke["name"]) < names.index("Roll back on failure")


def test_audit_pulls_own_data_through_wif_and_falls_back_for_forks() -> None:
    wf = load("audit.yml")
    assert {"pull_request", "push"} <= set(wf["on"])
    job = wf["jobs"]["audit"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    own = job["env"]["OWN_DATA"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in own
    auth = next(s for s in job["steps"] if uses(s, "google-github-actions/auth"))
    assert auth["if"] == "env.OWN_DATA == 'true'"
    assert auth["with"]["workload_identity_provider"].startswith("${{ vars.")
    assert auth["with"]["service_account"].startswith("${{ vars.")
    pull = next(s for s in job["steps"] if "dvc pull" in s.get("run", ""))
    assert pull["if"] == "env.OWN_DATA == 'true'"
    assert "--allow-missing" not in pull["run"]
    fork = next(s for s in job["steps"] if "training.data build" in s.get("run", ""))
    assert fork["if"] == "env.OWN_DATA != 'true'"
    assert "tools/ci_params.py" in fork["run"]
    assert "Simulated data" in fork["run"] and "reports/data-source.md" in fork["run"]
    summary = next(s for s in job["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["run"].index("data-source.md") < summary["run"].index("report.md")


def test_audit_comment_first_line_comes_from_the_event() -> None:
    wf = load("audit-comment.yml")
    assert wf["on"]["workflow_run"]["workflows"] == ["audit"]
    job = wf["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    # no pull-request code runs here
    assert not any(uses(s, "actions/checkout") for s in job["steps"])
    assert job["env"]["HEAD_REPO"] == "${{ github.event.workflow_run.head_repository.full_name }}"
    script = next(s["run"] for s in job["steps"] if "comment.md" in s.get("run", ""))
    assert 'os.environ["HEAD_REPO"] == repo' in script
    assert "Simulated data, not this pull request's" in script
    assert 'f"{first}\\n\\n' in script


def test_audit_comment_script_puts_the_fork_notice_first(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    job = load("audit-comment.yml")["jobs"]["comment"]
    run = next(s["run"] for s in job["steps"] if "comment.md" in s.get("run", ""))
    script = run.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    (tmp_path / "audit-report").mkdir()
    (tmp_path / "audit-report/report.md").write_text("# Audit\n\n![bar](shap/bar.png)\n")
    base = {"REPO": "o/r", "RUN_URL": "https://github.com/o/r/actions/runs/1", "ARTIFACT_ID": "7"}
    for head, expected in (("fork/r", "**Simulated data"), ("o/r", "**Data: this pull")):
        env = {**os.environ, **base, "HEAD_REPO": head}
        subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True)
        comment = (tmp_path / "comment.md").read_text()
        assert comment.splitlines()[0].startswith(expected)
        assert "](shap/bar.png)" not in comment
        assert "https://github.com/o/r/actions/runs/1/artifacts/7" in comment
