"""The data loop's jobs and the system of record's wiring, from the rendered manifests.

The three pipeline CronJobs (features daily, materialize hourly, retrain weekly), each
ending by recording its success through the real ``system_of_record`` CLI; Cloud SQL through
the Auth Proxy sidecar on GKE (k8s/components/cloudsql, record-db); the embedded default
locally; and the alert thresholds agreeing with the schedules and the spool bound.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.core.config import Settings
from system_of_record.store import JOBS, open_store
from tests.deploy.test_manifests import find, rendered, settings_env
from tools.k8s_validate import pod_spec

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s/components/monitoring/rules/fraud-scoring.rules.yaml"
WITH_JOBS = ("local-redis", "gke")
# name -> (schedule, period, the job_runs name it records)
CRONJOBS = {
    "fraud-features": ("30 0 * * *", timedelta(days=1), "features"),
    "feast-materialize": ("15 * * * *", timedelta(hours=1), "materialize"),
    "fraud-retrain": ("0 3 * * 1", timedelta(weeks=1), "retrain"),
}
PROXY_FLAGS = {"--private-ip", "--structured-logs", "--health-check", "--exit-zero-on-sigterm"}
# 1 M spooled decisions of ~600-byte JSON in a SQLite WAL table: 653 MiB, i.e. 684 B a row
# (measured here; k8s/base/deployment.yaml). The audit log keeps 2 GiB beside it.
SPOOL_BYTES_PER_ROW = 684
AUDIT_BYTES = 2 * 2**30


def cronjobs(overlay: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == "CronJob"}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def env_of(container: dict[str, Any], overlay: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it (values and ConfigMap keys)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            assert ref["name"].startswith("fraud-scoring-settings")
            env[item["name"]] = settings_env(overlay)[ref["key"]]
    return env


def argv(container: dict[str, Any], overlay: str) -> list[str]:
    """command + args with $(VAR) expanded from the container's environment."""
    env = env_of(container, overlay)
    words = container.get("command", []) + container.get("args", [])
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], w) for w in words]


def quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9, "g": 2**30}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", text).groups()  # type: ignore[union-attr]
    return int(number) * units.get(unit, 1)


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


# --------------------------------------------------------------------------- the jobs


@pytest.mark.parametrize("overlay", WITH_JOBS)
def test_three_cronjobs_on_schedule_forbid_overlap_and_are_bounded(overlay: str) -> None:
    jobs = cronjobs(overlay)
    assert set(jobs) == set(CRONJOBS)
    for name, (schedule, period, _) in CRONJOBS.items():
        spec = jobs[name]["spec"]
        assert (spec["schedule"], spec["timeZone"]) == (schedule, "Etc/UTC"), name
        assert spec["concurrencyPolicy"] == "Forbid" and not spec.get("suspend"), name
        job = spec["jobTemplate"]["spec"]
        assert 0 <= job["backoffLimit"] <= 2, name
        # A run ends before the next one is due.
        assert timedelta(seconds=job["activeDeadlineSeconds"]) < period, name
        for container in containers(pod_spec(jobs[name])):
            if container["name"] != "cloud-sql-proxy":
                assert "fraud-training" in container["image"], (name, container["name"])


@pytest.mark.parametrize("overlay", WITH_JOBS)
def test_every_job_ends_by_recording_its_success(overlay: str, tmp_path: Path) -> None:
    """The last container of features and materialize is the real `job-run` command: run
    as rendered (the URL swapped for a SQLite file), it leaves the success that the
    scoring pods export to the alert rules."""
    url = f"sqlite:///{tmp_path}/record.sqlite"
    for name in ("fraud-features", "feast-materialize"):
        spec = pod_spec(cronjobs(overlay)[name])
        command = argv(spec["containers"][-1], overlay)
        assert command[:4] == ["python", "-m", "system_of_record", "job-run"], name
        at = command.index("--url") + 1
        assert command[at] == settings_env(overlay)["RECORD_URL"]
        command[at] = url
        if "--password-file" in command:  # the Secret's file, as mounted
            at = command.index("--password-file") + 1
            (tmp_path / "password").write_text("unused by SQLite\n")
            command[at] = str(tmp_path / "password")
        assert command[command.index("--status") + 1] == "succeeded"
        assert isinstance(json.loads(command[command.index("--detail") + 1]), dict)
        done = subprocess.run(
            [sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    store = open_store(url)
    try:
        assert set(store.last_successes()) == {"features", "materialize"}
    finally:
        store.close()
    assert {job for _, _, job in CRONJOBS.values()} == set(JOBS)


def test_retrain_script_records_the_registered_version(tmp_path: Path) -> None:
    """tools/retrain.sh's last step, with dvc and the pipeline stubbed: a `retrain` success
    carrying the gate's verdict lands in the system of record."""
    src, bin_dir = tmp_path / "src", tmp_path / "bin"
    (src / "metrics").mkdir(parents=True)
    bin_dir.mkdir()
    gate = {"model_name": "fraud-ensemble", "version": "7", "promoted": False, "reason": "worse"}
    (src / "metrics/gate.json").write_text(json.dumps(gate))
    (bin_dir / "dvc").write_text("#!/bin/sh\nexit 0\n")
    # Only the system_of_record CLI and `python -c` run for real.
    (bin_dir / "python").write_text(
        f'#!/bin/sh\ncase "$1 $2" in "-m system_of_record"|-c*) '
        f'PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "$@";; esac\n'
        "exit 0\n"
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    url = f"sqlite:///{tmp_path}/record.sqlite"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SRC": str(src),
        "WORKSPACE": str(tmp_path / "work"),
        "DVC_REMOTE_URL": "gs://unused",
        "FEATURE_EXPORT_DIR": str(tmp_path / "published"),
        "RECORD_URL": url,
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "tools/retrain.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "job-run: retrain succeeded" in done.stdout
    store = open_store(url)
    try:
        assert set(store.last_successes()) == {"retrain"}
    finally:
        store.close()
    without = {k: v for k, v in env.items() if k != "RECORD_URL"}
    (tmp_path / "record.sqlite").unlink()
    done = subprocess.run(
        ["bash", str(ROOT / "tools/retrain.sh")], env=without, capture_output=True, text=True
    )
    assert done.returncode == 0 and not (tmp_path / "record.sqlite").exists()


def test_retrain_script_decides_on_last_weeks_challenger_first(tmp_path: Path) -> None:
    """With evaluate.promotion: after_shadow, tools/retrain.sh runs training.promote before
    the export and evaluate (which moves `challenger`), and its verdict joins the job run's
    detail; the stubbed promote writes the verdict the real one would."""
    src, bin_dir, calls = tmp_path / "src", tmp_path / "bin", tmp_path / "calls"
    (src / "metrics").mkdir(parents=True)
    bin_dir.mkdir()
    (src / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"promotion": "after_shadow"}}))
    gate = {"model_name": "fraud-ensemble", "version": "8", "promoted": False, "reason": "held"}
    (src / "metrics/gate.json").write_text(json.dumps(gate))
    verdict = {"verdict": "promote", "challenger": "7", "champion_after": "7", "reason": "v7: ok"}
    (bin_dir / "dvc").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "python").write_text(
        f'#!/bin/sh\n[ "$1" = -m ] && echo "$2" >> {shlex.quote(str(calls))}\n'
        f'case "$1 $2" in "-m system_of_record"|-c*) '
        f'PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "$@";; '
        f'"-m training.promote") echo {shlex.quote(json.dumps(verdict))} > metrics/promote.json;;'
        " esac\nexit 0\n"
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    url = f"sqlite:///{tmp_path}/record.sqlite"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SRC": str(src),
        "WORKSPACE": str(tmp_path / "work"),
        "DVC_REMOTE_URL": "gs://unused",
        "FEATURE_EXPORT_DIR": str(tmp_path / "published"),
        "RECORD_URL": url,
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "tools/retrain.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    modules = calls.read_text().split()
    assert modules.index("training.promote") < modules.index("system_of_record")
    assert modules.index("training.promote") < modules.index("training.evaluate")
    store = open_store(url)
    try:
        with store.transaction() as cursor:
            cursor.execute("SELECT detail FROM job_runs WHERE job = 'retrain'")
            (detail,) = cursor.fetchone()
    finally:
        store.close()
    assert json.loads(detail) == {**gate, "promotion": verdict}


@pytest.mark.parametrize("overlay", WITH_JOBS)
def test_feature_job_steps_chain_export_spark_publish(overlay: str) -> None:
    job = cronjobs(overlay)["fraud-features"]
    spec = pod_spec(job)
    steps = [c["name"] for c in spec["initContainers"] if c.get("restartPolicy") != "Always"]
    assert steps == ["export", "workspace", "features", "publish"]
    by_name = {c["name"]: argv(c, overlay) for c in containers(spec) if "command" in c}
    export, features, publish = by_name["export"], by_name["features"], by_name["publish"]
    assert export[:4] == ["python", "-m", "system_of_record", "export"]
    out = export[export.index("--out") + 1]
    assert int(export[export.index("--days") + 1]) >= 30  # the longest feature window
    assert features[:3] == ["python", "-m", "training.features"]
    assert features[features.index("--transactions") + 1] == out  # the export (transactions/)
    tables = Path(features[features.index("--out") + 1])
    assert Path(features[features.index("--params") + 1]) == Path("/opt/fraud-src/params.yaml")
    assert features[features.index("--terminals") + 1].startswith("/feature-data/")
    assert publish[:4] == ["python", "-m", "feature_repo.online_load", "publish"]
    assert Path(publish[publish.index("--repo") + 1]) == tables.parent
    # Published to the bucket that feast-materialize loads from.
    bucket = {
        n: next(v for v in pod_spec(j)["volumes"] if v["name"] == "feature-data")
        for n, j in cronjobs(overlay).items()
    }
    assert bucket["fraud-features"] == bucket["feast-materialize"] == bucket["fraud-retrain"]
    (mount,) = [
        m
        for c in spec["initContainers"]
        if c["name"] == "publish"
        for m in c["volumeMounts"]
        if m["name"] == "feature-data"
    ]
    assert publish[publish.index("--to") + 1] == mount["mountPath"]
    # Spark local mode: the driver heap inside the limit, 4 GiB left for Python and Arrow.
    (spark,) = [c for c in spec["initContainers"] if c["name"] == "features"]
    resources = spark["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "4"
    heap = re.search(r"--driver-memory (\w+)", env_of(spark, overlay)["PYSPARK_SUBMIT_ARGS"])
    assert heap and quantity(resources["limits"]["memory"]) - quantity(heap[1]) >= 4 * 2**30


# --------------------------------------------------------------------------- the database


def test_record_url_is_cloud_sql_on_gke_host_postgres_locally_and_embedded_in_local() -> None:
    # local: the embedded default (a SQLite file beside the audit log), no password.
    assert Settings.model_fields["record_url"].default is None
    assert not {"RECORD_URL", "RECORD_PASSWORD_FILE"} & set(settings_env("local"))
    gke = urlsplit(settings_env("gke")["RECORD_URL"])
    assert (gke.scheme, gke.hostname, gke.port) == ("postgresql", "127.0.0.1", 5432)
    host = urlsplit(settings_env("local-redis")["RECORD_URL"])
    assert host.scheme == "postgresql"
    egress = find("local-redis", "NetworkPolicy", "record-db")["spec"]["egress"]
    assert egress == [
        {
            "to": [{"ipBlock": {"cidr": f"{host.hostname}/32"}}],
            "ports": [{"port": host.port, "protocol": "TCP"}],
        }
    ]
    for overlay in ("local", "local-redis"):
        assert not [o for o in rendered(overlay) if "cloud-sql-proxy" in yaml.safe_dump(o)]


def test_the_proxy_is_a_native_sidecar_of_the_pods_and_every_job() -> None:
    workloads = [find("gke", "Deployment", "fraud-scoring"), *cronjobs("gke").values()]
    proxies = []
    for workload in workloads:
        first = pod_spec(workload)["initContainers"][0]
        assert first["name"] == "cloud-sql-proxy", workload["metadata"]["name"]
        proxies.append(first)
    assert all(p == proxies[0] for p in proxies)  # one definition
    proxy = proxies[0]
    assert proxy["restartPolicy"] == "Always"
    image = "gcr.io/cloud-sql-connectors/cloud-sql-proxy@sha256:"
    assert re.fullmatch(re.escape(image) + "[0-9a-f]{64}", proxy["image"])
    instance, *flags = proxy["args"]
    assert re.fullmatch(r"[a-z][-a-z0-9]*:[a-z]+-[a-z]+\d:[a-z][-a-z0-9]*", instance)
    assert PROXY_FLAGS <= set(flags) and "--auto-iam-authn" not in flags
    url = urlsplit(settings_env("gke")["RECORD_URL"])
    assert {f"--address={url.hostname}", f"--port={url.port}"} <= set(flags)
    (health,) = proxy["ports"]
    assert f"--http-port={health['containerPort']}" in flags
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"
    assert proxy["livenessProbe"]["httpGet"]["path"] == "/liveness"
    assert "readinessProbe" not in proxy  # a database outage must not unready the pods
    # requests = limits: the scoring pod keeps Guaranteed QoS.
    assert proxy["resources"]["requests"] == proxy["resources"]["limits"]


@pytest.mark.parametrize("overlay", WITH_JOBS)
def test_every_database_client_reads_the_password_from_a_read_only_secret(overlay: str) -> None:
    password = Path(settings_env(overlay)["RECORD_PASSWORD_FILE"])
    workloads = [find(overlay, "Deployment", "fraud-scoring"), *cronjobs(overlay).values()]
    clients = 0
    for workload in workloads:
        spec = pod_spec(workload)
        (volume,) = [v for v in spec["volumes"] if v["name"] == "record-db"]
        assert volume["secret"]["secretName"] == "fraud-record-db"
        assert volume["secret"]["items"] == [{"key": "password", "path": password.name}]
        for container in containers(spec):
            talks = container["name"] == "api" or "RECORD_URL" in env_of(container, overlay)
            mounts = [m for m in container.get("volumeMounts", []) if m["name"] == "record-db"]
            if not talks:
                assert not mounts, container["name"]
                continue
            clients += 1
            assert mounts == [
                {"name": "record-db", "mountPath": str(password.parent), "readOnly": True}
            ], container["name"]
            words = argv(container, overlay)
            if words[:3] == ["python", "-m", "system_of_record"]:
                assert words[words.index("--password-file") + 1] == str(password)
            elif container["name"] == "retrain":
                assert env_of(container, overlay)["RECORD_PASSWORD_FILE"] == str(password)
            secret_env = [e for e in container.get("env", []) if "secretKeyRef" in str(e)]
            assert "fraud-record-db" not in str(secret_env)
    assert clients == 5  # api; export + record; record; retrain


def test_cloud_sql_egress_and_workload_identity() -> None:
    site = dict(
        line.split("=", 1)
        for line in (ROOT / "k8s/overlays/gke/site.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    policy = find("gke", "NetworkPolicy", "cloudsql")["spec"]
    assert policy["podSelector"]["matchExpressions"][0]["values"] == [
        "fraud-scoring",
        "fraud-pipeline",
    ]
    rules = [(r.get("to"), [p["port"] for p in r["ports"]]) for r in policy["egress"]]
    assert rules[0] == ([{"ipBlock": {"cidr": site["CLOUDSQL_CIDR"]}}], [3307])
    assert (None, [443]) in rules
    args = pod_spec(find("gke", "Deployment", "fraud-scoring"))["initContainers"][0]["args"]
    assert args[0] == site["CLOUDSQL_INSTANCE"]
    for account, key in (("fraud-scoring", "SCORING_GSA"), ("fraud-pipeline", "PIPELINE_GSA")):
        notes = find("gke", "ServiceAccount", account)["metadata"]["annotations"]
        assert notes["iam.gke.io/gcp-service-account"] == site[key]


@pytest.mark.parametrize("overlay", ("local", "gke"))
def test_the_var_volume_holds_the_audit_log_and_a_full_spool(overlay: str) -> None:
    spec = pod_spec(find(overlay, "Deployment", "fraud-scoring"))
    (var,) = [v for v in spec["volumes"] if v["name"] == "var"]
    rows = int(settings_env(overlay)["RECORD_SPOOL_MAX_ROWS"])
    assert rows == Settings.model_fields["record_spool_max_rows"].default
    need = AUDIT_BYTES + rows * SPOOL_BYTES_PER_ROW * 1.25  # WAL and free pages
    size = quantity(var["emptyDir"]["sizeLimit"])
    assert need <= size
    (api,) = spec["containers"]
    assert quantity(api["resources"]["limits"]["ephemeral-storage"]) >= size


# --------------------------------------------------------------------------- the alerts


def test_alert_thresholds_agree_with_the_schedules_and_the_spool_bound() -> None:
    rules = alert_rules()
    jobs = cronjobs("gke")
    for name, (_, period, job) in CRONJOBS.items():
        (rule,) = [r for r in rules.values() if f'pipeline="{job}"}}) >' in r["expr"]]
        hours = re.search(r"> (\d+) \* (3600|86400)", rule["expr"])
        assert hours, rule["alert"]
        threshold = timedelta(seconds=int(hours[1]) * int(hours[2]))
        deadline = jobs[name]["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        # A healthy schedule never alerts: the latest success is at most one period plus
        # one run's deadline old.
        assert period + timedelta(seconds=deadline) <= threshold, rule["alert"]
        assert threshold <= 2 * period, rule["alert"]  # one missed run is noticed
        assert f'pipeline="{job}"' in rules["FraudPipelineNeverSucceeded"]["expr"]
    half = int(settings_env("gke")["RECORD_SPOOL_MAX_ROWS"]) // 2
    assert f"> {half}" in rules["FraudRecordSpoolHalfFull"]["expr"]
    assert "fraud_record_ship_errors_total" in rules["FraudRecordShipErrors"]["expr"]
