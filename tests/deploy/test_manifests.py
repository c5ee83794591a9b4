"""The rendered Kubernetes manifests, checked offline, and kept in agreement with the app.

One source of truth: the container port, probe paths, environment variable names and
their values must be what ``app/`` (Settings, routes, graceful shutdown) and the Dockerfile
say, so a renamed setting or route fails here before it fails in a cluster.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from app.core.config import Settings
from tests.deploy.test_dockerfile import SERVICE_UID, of
from tools import k8s_validate
from tools.k8s_validate import pod_spec

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = tuple(k8s_validate.TARGETS)
# Read by libraries from the environment, not by Settings (documented in settings.env).
LIBRARY_VARIABLES = re.compile(
    r"^(OTEL_EXPORTER_OTLP_\w+|OTEL_TRACES_SAMPLER(_ARG)?|OMP_NUM_THREADS)$"
)
CLOUD_ONLY_KINDS = {"Ingress", "ManagedCertificate", "FrontendConfig", "BackendConfig", "CronJob"}


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(k8s_validate.load_objects(k8s_validate.render(k8s_validate.TARGETS[overlay])))


def find(overlay: str, kind: str, name: str) -> dict[str, Any]:
    matches = [
        o for o in rendered(overlay) if o["kind"] == kind and o["metadata"]["name"].startswith(name)
    ]
    assert len(matches) == 1, f"{overlay}: expected one {kind} {name}, got {len(matches)}"
    return matches[0]


def api_container(overlay: str) -> dict[str, Any]:
    (container,) = find(overlay, "Deployment", "fraud-scoring")["spec"]["template"]["spec"][
        "containers"
    ]
    return container


def settings_env(overlay: str) -> dict[str, str]:
    return dict(find(overlay, "ConfigMap", "fraud-scoring-settings")["data"])


def workloads(overlay: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] in ("Deployment", "CronJob")]


# --------------------------------------------------------------------------- the validator


@pytest.mark.slow
def test_make_k8s_validate_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools/k8s_validate.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "checkov: " in done.stdout and " 0 failed" in done.stdout
    for tool in ("hadolint: clean", "actionlint: clean", "zizmor: clean"):
        assert tool in done.stdout


def test_strict_validation_rejects_a_misspelled_field() -> None:
    deployment = find("gke", "Deployment", "fraud-scoring")
    assert k8s_validate.schema_errors(deployment) == []
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    assert k8s_validate.schema_errors(broken)


def test_gke_custom_resources_are_checked_against_the_repo_schemas() -> None:
    certificate = find("gke", "ManagedCertificate", "fraud-scoring")
    backend = find("gke", "BackendConfig", "fraud-scoring")
    assert k8s_validate.schema_errors(certificate) == []
    assert k8s_validate.schema_errors(backend) == []
    typo = yaml.safe_load(yaml.safe_dump(backend))
    typo["spec"]["healthCheck"]["requestpath"] = "/readyz"
    assert k8s_validate.schema_errors(typo)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no schema" in k8s_validate.schema_errors(unknown)[0]


def test_checkov_skips_need_a_reason() -> None:
    obj = {"metadata": {"annotations": {"checkov.io/skip1": "CKV_K8S_35=because of a reason"}}}
    assert k8s_validate.skip_reasons(obj) == {"CKV_K8S_35": "because of a reason"}


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_name_is_a_settings_field_or_a_library_variable(overlay: str) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    store_yaml = ROOT / "feature_repo" / settings_env(overlay)["FEATURE_STORE_YAML"]
    config = yaml.safe_dump(yaml.safe_load(store_yaml.read_text()))  # values, not comments
    feast_variables = set(re.findall(r"\$\{(\w+)\}", config))
    names = set(settings_env(overlay)) | {e["name"] for e in api_container(overlay).get("env", [])}
    known = fields | feast_variables
    unknown = {n for n in names if n not in known and not LIBRARY_VARIABLES.match(n)}
    assert not unknown, f"{overlay}: variables nothing reads: {sorted(unknown)}"
    # Every ${VAR} that the selected feature_store.yaml needs is provided.
    assert feast_variables <= names, feast_variables - names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_settings_values_are_valid_settings(overlay: str, tmp_path: Path) -> None:
    env = {
        k.lower(): v for k, v in settings_env(overlay).items() if k.lower() in Settings.model_fields
    }
    # The Secret's files, as the pod would see them.
    keys, pepper = tmp_path / "api-keys", tmp_path / "pii-hash-key"
    keys.write_text("a-key\n")
    pepper.write_text("a-pepper\n")
    env.update(api_keys_file=str(keys), pii_hash_key_file=str(pepper))
    settings = Settings(**env)  # type: ignore[arg-type]
    assert settings.environment == ("local" if overlay == "local" else "gke")
    # FEATURE_REPO is the pod's copy of the image's feature_repo (the init container's).
    assert settings.feature_repo == Path("var/feature_repo")
    assert (ROOT / "feature_repo" / settings.feature_store_yaml).is_file()
    if overlay == "gke":
        assert settings.strict_readiness and settings.workers == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_port_agrees_with_settings_dockerfile_service_and_load_balancer(overlay: str) -> None:
    port = int(settings_env(overlay)["PORT"])
    (container_port,) = api_container(overlay)["ports"]
    assert container_port == {"name": "http", "containerPort": port, "protocol": "TCP"}
    assert str(port) in " ".join(of("EXPOSE")).split()
    assert settings_env(overlay)["HOST"] == "0.0.0.0"  # reachable from outside the pod
    service = find(overlay, "Service", "fraud-scoring")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    if overlay == "gke":
        health = find("gke", "BackendConfig", "fraud-scoring")["spec"]["healthCheck"]
        assert health["port"] == port
        assert health["requestPath"] == api_container("gke")["readinessProbe"]["httpGet"]["path"]


def _app_paths() -> set[str]:
    from app.main import create_app

    return set(create_app(Settings()).openapi()["paths"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_distinct_and_use_the_service_endpoints(overlay: str) -> None:
    container = api_container(overlay)
    probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
    paths = {kind: probe["httpGet"]["path"] for kind, probe in probes.items()}
    assert paths == {"startup": "/healthz", "readiness": "/readyz", "liveness": "/healthz"}
    assert set(paths.values()) <= _app_paths()
    assert all(p["httpGet"]["port"] == "http" for p in probes.values())
    assert len({yaml.safe_dump(p) for p in probes.values()}) == 3
    # Start-up may take a minute (measured: ~5 s) before liveness starts counting.
    startup = probes["startup"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_covers_the_prestop_pause_and_the_drain(overlay: str) -> None:
    spec = pod_spec(find(overlay, "Deployment", "fraud-scoring"))
    pause = api_container(overlay)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5
    assert spec["terminationGracePeriodSeconds"] >= pause + GRACEFUL_SHUTDOWN_SECONDS
    rollout = find(overlay, "Deployment", "fraud-scoring")["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_files_are_where_the_settings_read_them(overlay: str) -> None:
    container = api_container(overlay)
    spec = pod_spec(find(overlay, "Deployment", "fraud-scoring"))
    volumes = {v["name"]: v for v in spec["volumes"]}
    secret_files = {
        f"{m['mountPath']}/{item['path']}"
        for m in container["volumeMounts"]
        if "secret" in volumes[m["name"]]
        for item in volumes[m["name"]]["secret"].get("items", [])
    }
    env = settings_env(overlay)
    assert {env["API_KEYS_FILE"], env["PII_HASH_KEY_FILE"]} <= secret_files
    if "RECORD_PASSWORD_FILE" in env:  # the system of record's password (record-db)
        assert env["RECORD_PASSWORD_FILE"] in secret_files
    secret_env = [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    assert {e["name"] for e in secret_env} <= {"FEAST_REDIS_CONNECTION"}  # Feast needs env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_only_writable_paths_are_emptydirs(overlay: str) -> None:
    container = api_container(overlay)
    spec = pod_spec(find(overlay, "Deployment", "fraud-scoring"))
    empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs}
    workdir = of("WORKDIR")[-1]
    assert writable == {"/tmp", f"{workdir}/var"}
    for database in ("LABEL_LOG", "AUDIT_LOG"):  # both SQLite logs on the writable volume
        path = Path(workdir) / settings_env(overlay)[database]
        assert path.parent.as_posix() == f"{workdir}/var", database
    # The online store too (velocity pushes; SQLite cannot read WAL on a read-only
    # filesystem), copied there by the init container before the service starts.
    repo = Path(workdir) / settings_env(overlay)["FEATURE_REPO"]
    assert repo.parent.as_posix() == f"{workdir}/var"
    # The one init container that runs to completion (the Auth Proxy is a sidecar).
    (init,) = [c for c in spec["initContainers"] if c.get("restartPolicy") != "Always"]
    assert init["image"] == container["image"]
    assert f"cp -R feature_repo/. {settings_env(overlay)['FEATURE_REPO']}/" in init["command"][-1]
    assert {m["mountPath"] for m in init["volumeMounts"]} == {f"{workdir}/var"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_runs_restricted(overlay: str) -> None:
    namespace = find(overlay, "Namespace", "fraud")["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(overlay):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["runAsUser"] == int(SERVICE_UID), name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_latest_tag_and_gke_pins_every_image_by_digest(overlay: str) -> None:
    images = [
        c["image"]
        for w in workloads(overlay)
        for c in pod_spec(w)["containers"] + pod_spec(w).get("initContainers", [])
    ]
    assert images and not [i for i in images if i.endswith(":latest")]
    if overlay == "gke":
        assert all(re.search(r"@sha256:[0-9a-f]{64}$", i) for i in images), images
    assert "latest" not in "\n".join(yaml.safe_dump(o) for o in rendered(overlay)).replace(
        "latest audit", ""
    )


def test_local_is_one_replica_without_cloud_objects() -> None:
    kinds = {o["kind"] for o in rendered("local")}
    assert not kinds & CLOUD_ONLY_KINDS
    assert "HorizontalPodAutoscaler" not in kinds
    assert find("local", "Deployment", "fraud-scoring")["spec"]["replicas"] == 1
    assert find("local", "Service", "fraud-scoring")["spec"]["type"] == "ClusterIP"


def test_gke_scales_with_an_hpa_and_serves_https() -> None:
    hpa = find("gke", "HorizontalPodAutoscaler", "fraud-scoring")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert "replicas" not in find("gke", "Deployment", "fraud-scoring")["spec"]
    bounds = hpa["spec"]
    assert bounds["minReplicas"] >= 3 and bounds["maxReplicas"] > bounds["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert {"scaleUp", "scaleDown"} <= set(hpa["spec"]["behavior"])
    service = find("gke", "Service", "fraud-scoring")
    assert service["spec"]["type"] == "LoadBalancer"
    public = find("gke", "Ingress", "fraud-scoring")
    routes = {p["path"] for r in public["spec"]["rules"] for p in r["http"]["paths"]}
    assert routes == {"/v1", "/dashboard", "/readyz"} and "defaultBackend" not in public["spec"]
    assert routes <= {"/v1", "/dashboard"} | _app_paths()  # /dashboard: outside OpenAPI
    ingress = public["metadata"]["annotations"]
    assert ingress["networking.gke.io/managed-certificates"] == "fraud-scoring"
    assert ingress["networking.gke.io/v1beta1.FrontendConfig"] == "fraud-scoring"
    assert find("gke", "FrontendConfig", "fraud-scoring")["spec"]["redirectToHttps"]["enabled"]
    backend = service["metadata"]["annotations"]["cloud.google.com/backend-config"]
    assert '"default": "fraud-scoring"' in backend


def test_gke_site_values_replace_every_placeholder() -> None:
    text = "\n".join(yaml.safe_dump(o) for o in rendered("gke"))
    for placeholder in (
        *("DOMAIN", "_GSA", "MEMORYSTORE_CIDR", "FEATURE_BUCKET", "STATIC_IP_NAME"),
        *("CLOUDSQL_INSTANCE", "CLOUDSQL_CIDR"),
    ):
        assert placeholder not in text
    assert not [o for o in rendered("gke") if o["metadata"]["name"] == "gke-site"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_what_is_needed(overlay: str) -> None:
    deny = find(overlay, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    scoring = find(overlay, "NetworkPolicy", "fraud-scoring")["spec"]
    (ingress,) = scoring["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    egress_ports = {p["port"] for rule in scoring["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 4318}
    endpoint = settings_env(overlay)["OTEL_EXPORTER_OTLP_ENDPOINT"]
    collector = find(overlay, "Service", "otel-collector")
    assert endpoint == f"http://{collector['metadata']['name']}:4318"
    if overlay == "gke":
        redis = find("gke", "NetworkPolicy", "memorystore")["spec"]
        assert "fraud-scoring" in redis["podSelector"]["matchExpressions"][0]["values"]
        assert redis["egress"][0]["ports"] == [{"port": 6378, "protocol": "TCP"}]


def test_gke_jobs_materialize_and_retrain_with_the_training_image() -> None:
    materialize = find("gke", "CronJob", "feast-materialize")
    # The load step; the Job's container then records the run (test_pipeline_jobs.py).
    steps = pod_spec(materialize)["initContainers"]
    (container,) = [c for c in steps if c["name"] == "materialize"]
    # Explicit windows from the tables (feature_repo/online_load.py), never the
    # registry's materialization state: materialize-incremental loaded nothing.
    assert container["command"][:4] == ["python", "-m", "feature_repo.online_load", "load"]
    assert "materialize-incremental" not in " ".join(container["command"])
    # Every view of the FeatureService the pods serve, named by the same ConfigMap key.
    assert container["command"][-2:] == ["--feature-service", "$(FEATURE_SERVICE)"]
    (service,) = [e for e in container["env"] if e["name"] == "FEATURE_SERVICE"]
    settings = service["valueFrom"]["configMapKeyRef"]["name"]
    assert settings.startswith("fraud-scoring-settings-")
    assert find("gke", "ConfigMap", settings)["data"]["FEATURE_SERVICE"] == "fraud_detection_v2"
    assert materialize["spec"]["concurrencyPolicy"] == "Forbid"
    retrain = find("gke", "CronJob", "fraud-retrain")
    assert not retrain["spec"].get("suspend")  # weekly, no longer a suspended template
    (trainer,) = pod_spec(retrain)["containers"]
    assert trainer["command"][-1].endswith("tools/retrain.sh")
    assert "fraud-training" in container["image"] and "fraud-training" in trainer["image"]
