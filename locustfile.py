"""Locust load test of the fraud scoring API, replaying real transactions, with SLO gates.

Traffic comes from a transactions parquet file (``LOCUST_DATA``, default the drifted v1
month), sampled once per process and turned into request bodies by the shared builder
(:mod:`benchmarks.transactions`): replays of known customers (most traffic), unknown
customers, suspicious variants of real transactions, batches, and feedback labels for
transactions scored earlier (sometimes repeated, sometimes contradicting: 409 counts as
handled). At the end the p95/p99 of ``POST /v1/predict`` and the failure ratios are
checked against ``SLO_P95_MS``, ``SLO_P99_MS`` and ``SLO_MAX_FAILURE_RATIO``; a missed
gate makes Locust exit with 1.

    locust -f locustfile.py --headless --host http://127.0.0.1:8000 -u 20 -r 10 -t 60s

Other settings (environment): ``LOCUST_API_KEY`` (sent as ``X-API-Key`` on ``/v1/*``),
``LOCUST_RPS_PER_USER`` (default 10), ``LOCUST_SAMPLE_ROWS`` (default 20000),
``LOCUST_TIMESTAMPS`` (``replay``: the transaction's own time, matching the demo online
store's snapshots; ``now``: the wall clock, as in production), ``LOCUST_SEED``.
Users, spawn rate, run time and host are Locust's own (``LOCUST_USERS``, ...); so are
``LOCUST_TAGS`` / ``LOCUST_EXCLUDE_TAGS`` over the task tags predict, batch, feedback, health.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from locust import FastHttpUser, constant_throughput, events, tag, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

from benchmarks.transactions import LABELLED_FIELDS, flag, request_body

log = logging.getLogger("locustfile")

PREDICT = "/v1/predict"
BATCH = "/v1/predict/batch"
FEEDBACK = "/v1/feedback"
READYZ = "/readyz"
SCORE_FIELDS = (
    "transaction_id",
    "fraud_probability",
    "risk_level",
    "decision",
    "reasons",
    "degraded",
    "decision_source",
    "rule_set_version",
    "rules_matched",
    "model_version",
    "latency_ms",
)
HIGH_RISK_CATEGORIES = ("electronics", "jewelry", "digital_goods", "online_retail")
MAX_AMOUNT = 1_000_000.0
MAX_DISTANCE_KM = 20_050.0


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={raw!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class Config:
    data: Path
    sample_rows: int
    rps_per_user: float
    timestamps: str
    api_key: str | None
    seed: int | None
    slo_p95_ms: float
    slo_p99_ms: float
    slo_max_failure_ratio: float

    @classmethod
    def from_env(cls) -> Config:
        timestamps = os.environ.get("LOCUST_TIMESTAMPS", "replay").strip().lower()
        if timestamps not in ("replay", "now"):
            raise ValueError(f"LOCUST_TIMESTAMPS={timestamps!r}: use replay or now")
        seed = os.environ.get("LOCUST_SEED", "").strip()
        return cls(
            data=Path(os.environ.get("LOCUST_DATA", "data/v1/transactions.parquet")),
            sample_rows=max(1, int(_env_float("LOCUST_SAMPLE_ROWS", 20_000))),
            rps_per_user=_env_float("LOCUST_RPS_PER_USER", 10.0) or 10.0,
            timestamps=timestamps,
            api_key=os.environ.get("LOCUST_API_KEY") or None,
            seed=int(seed) if seed else None,
            slo_p95_ms=_env_float("SLO_P95_MS", 50.0),
            slo_p99_ms=_env_float("SLO_P99_MS", 100.0),
            slo_max_failure_ratio=_env_float("SLO_MAX_FAILURE_RATIO", 0.001),
        )


CONFIG = Config.from_env()
RNG = random.Random(CONFIG.seed)  # nosec B311 # seeded synthetic load, not for security


def _row(row: Any) -> dict[str, Any]:
    """A sampled transaction: its request body without an id (each send gets a fresh one)
    and its truth."""
    body = request_body(row)
    del body["transaction_id"]
    return {**body, "is_fraud": flag(row.is_fraud)}


class Traffic:
    """Real transactions (JSON-ready dicts) sampled once, plus what was scored so far."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            raise ValueError("no transactions to replay")
        self.rows = rows
        self.prefix = f"lt-{uuid.uuid4().hex[:10]}"
        self._counter = itertools.count()
        # (transaction id, true label) scored but not yet labelled, and labelled ones.
        self.scored: deque[tuple[str, bool]] = deque(maxlen=20_000)
        self.labelled: deque[tuple[str, bool]] = deque(maxlen=20_000)
        self.decision_sources: Counter[str] = Counter()
        self.degraded: Counter[str] = Counter()

    @classmethod
    def load(cls, config: Config) -> Traffic:
        if not config.data.is_file():
            raise FileNotFoundError(
                f"LOCUST_DATA={config.data}: no such parquet file (run `make data` first)"
            )
        frame = pd.read_parquet(config.data, columns=list(LABELLED_FIELDS))
        if len(frame) > config.sample_rows:
            frame = frame.sample(n=config.sample_rows, random_state=config.seed or 0)
        frame = frame.assign(  # whole UTC seconds, cents, metres
            timestamp=pd.to_datetime(frame["timestamp"], utc=True).dt.floor("s"),
            amount=frame["amount"].astype(float).round(2),
            distance_from_home_km=frame["distance_from_home_km"].astype(float).round(3),
        )
        rows = [_row(r) for r in frame.itertuples(index=False)]
        log.info("loaded %d transactions from %s", len(rows), config.data)
        return cls(rows)

    def new_id(self) -> str:
        return f"{self.prefix}-{next(self._counter):09d}"

    def transaction(self, row: dict[str, Any]) -> dict[str, Any]:
        """A request body for ``row`` with a fresh transaction id (label left out)."""
        body = {k: v for k, v in row.items() if k != "is_fraud"}
        body["transaction_id"] = self.new_id()
        if CONFIG.timestamps == "now":
            body["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
        return body

    def known(self) -> tuple[dict[str, Any], bool]:
        row = RNG.choice(self.rows)
        return self.transaction(row), row["is_fraud"]

    def new_customer(self) -> tuple[dict[str, Any], bool]:
        body, is_fraud = self.known()
        body["customer_id"] = f"NEW{uuid.uuid4().hex[:12]}"
        return body, is_fraud

    def suspicious(self) -> tuple[dict[str, Any], bool]:
        """A known customer's card used far away, abroad, online with a keyed-in number."""
        body, _ = self.known()
        body["amount"] = round(min(body["amount"] * 20, MAX_AMOUNT), 2)
        body["distance_from_home_km"] = round(RNG.uniform(800.0, 9_000.0), 3)
        body["is_foreign"] = True
        body["channel"] = "online"
        body["entry_mode"] = "manual"
        body["merchant_category"] = RNG.choice(HIGH_RISK_CATEGORIES)
        return body, True


TRAFFIC: Traffic | None = None


def score_problem(body: Any, transaction_id: str) -> str | None:
    """Why a score object breaks the response contract, or None."""
    if not isinstance(body, dict):
        return "score is not a JSON object"
    missing = [f for f in SCORE_FIELDS if f not in body]
    if missing:
        return f"missing {missing}"
    if body["transaction_id"] != transaction_id:
        return f"transaction_id {body['transaction_id']!r} != {transaction_id!r}"
    p = body["fraud_probability"]
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        return f"fraud_probability {p!r} is not a probability"
    if not isinstance(body["reasons"], list) or not isinstance(body["degraded"], list):
        return "reasons and degraded must be lists"
    if body["decision_source"] not in ("model", "rule", "rules_fallback"):
        return f"decision_source {body['decision_source']!r}"
    if not isinstance(body["rule_set_version"], str) or not isinstance(body["rules_matched"], list):
        return "rule_set_version must be a string and rules_matched a list"
    return None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, TypeError):  # an undecodable body is a failed request
        return None


class ScoringUser(FastHttpUser):
    """One payment switch connection sending a realistic mix of calls."""

    wait_time = constant_throughput(CONFIG.rps_per_user)
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        if TRAFFIC is None:
            raise RuntimeError("the transactions were not loaded (see the init event)")
        self.traffic = TRAFFIC
        self.headers = {"X-API-Key": CONFIG.api_key} if CONFIG.api_key else {}

    def _predict(self, body: dict[str, Any], is_fraud: bool) -> None:
        with self.client.post(
            PREDICT, json=body, headers=self.headers, name=PREDICT, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            result = _json(response)
            problem = score_problem(result, body["transaction_id"])
            if problem:
                response.failure(problem)
                return
            response.success()
            self.traffic.scored.append((body["transaction_id"], is_fraud))
            self.traffic.decision_sources[result["decision_source"]] += 1
            self.traffic.degraded.update(result["degraded"])

    @tag("predict")
    @task(60)
    def known_customer(self) -> None:
        self._predict(*self.traffic.known())

    @tag("predict")
    @task(10)
    def new_customer(self) -> None:
        self._predict(*self.traffic.new_customer())

    @tag("predict")
    @task(8)
    def suspicious(self) -> None:
        self._predict(*self.traffic.suspicious())

    @tag("batch")
    @task(3)
    def batch(self) -> None:
        labelled = [self.traffic.known() for _ in range(RNG.randint(10, 100))]
        bodies = [body for body, _ in labelled]
        with self.client.post(
            BATCH,
            json={"transactions": bodies},
            headers=self.headers,
            name=BATCH,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            result = _json(response)
            answers = result.get("results") if isinstance(result, dict) else None
            if not isinstance(answers, list) or len(answers) != len(bodies):
                response.failure(f"expected {len(bodies)} results")
                return
            for body, answer in zip(bodies, answers, strict=True):
                problem = score_problem(answer, body["transaction_id"])
                if problem:
                    response.failure(f"batch: {problem}")
                    return
            response.success()
            self.traffic.scored.extend((b["transaction_id"], y) for b, y in labelled[:5])

    @tag("feedback")
    @task(10)
    def feedback(self) -> None:
        traffic = self.traffic
        if traffic.labelled and RNG.random() < 0.2:
            # The same label again (duplicate, 200), or now and then a contradicting one (409).
            transaction_id, is_fraud = RNG.choice(traffic.labelled)
            if RNG.random() < 0.25:
                is_fraud = not is_fraud
        elif traffic.scored:
            transaction_id, is_fraud = traffic.scored.popleft()
            traffic.labelled.append((transaction_id, is_fraud))
        else:
            return
        body = {"transaction_id": transaction_id, "is_fraud": is_fraud}
        with self.client.post(
            FEEDBACK, json=body, headers=self.headers, name=FEEDBACK, catch_response=True
        ) as response:
            if response.status_code not in (200, 409):
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            result = _json(response)
            if not isinstance(result, dict) or result.get("transaction_id") != transaction_id:
                response.failure("feedback answer does not echo the transaction_id")
                return
            response.success()

    @tag("health")
    @task(1)
    def readiness(self) -> None:
        with self.client.get(READYZ, name=READYZ, catch_response=True) as response:
            result = _json(response)
            if response.status_code != 200 or not isinstance(result, dict):
                response.failure(f"HTTP {response.status_code}")
            else:
                response.success()


@events.init.add_listener
def load_traffic(environment: Environment, **_: Any) -> None:
    """Load the transactions once per process that runs users (not on a master)."""
    global TRAFFIC
    if not isinstance(environment.runner, MasterRunner) and TRAFFIC is None:
        TRAFFIC = Traffic.load(CONFIG)


def slo_failures(stats: RequestStats, config: Config) -> list[str]:
    """The missed SLO gates (empty when all pass); logs every measured value."""
    predict: StatsEntry = stats.get(PREDICT, "POST")
    total = stats.total
    failures: list[str] = []
    if predict.num_requests == 0:
        failures.append(f"no successful or failed {PREDICT} requests were measured")
    p95 = predict.get_response_time_percentile(0.95) if predict.num_requests else math.inf
    p99 = predict.get_response_time_percentile(0.99) if predict.num_requests else math.inf
    checks = [
        (f"{PREDICT} p95 (ms)", p95, config.slo_p95_ms),
        (f"{PREDICT} p99 (ms)", p99, config.slo_p99_ms),
        (f"{PREDICT} failure ratio", predict.fail_ratio, config.slo_max_failure_ratio),
        ("overall failure ratio", total.fail_ratio, config.slo_max_failure_ratio),
    ]
    log.info(
        "measured: %d requests (%d %s), %.1f req/s overall, %s median %s ms",
        total.num_requests,
        predict.num_requests,
        PREDICT,
        total.total_rps,
        PREDICT,
        predict.median_response_time if predict.num_requests else "-",
    )
    for label, value, limit in checks:
        passed = value <= limit
        log.info("SLO %-28s %10.4g <= %-8g %s", label, value, limit, "ok" if passed else "FAILED")
        if not passed:
            failures.append(f"{label} {value:.4g} > {limit:g}")
    return failures


@events.quitting.add_listener
def check_slos(environment: Environment, **_: Any) -> None:
    """Gate the run on the SLOs (on the master or a local runner: the aggregated stats)."""
    if isinstance(environment.runner, WorkerRunner) or environment.stats is None:
        return
    if TRAFFIC is not None:
        log.info(
            "decision sources %s; degraded features %s",
            dict(TRAFFIC.decision_sources),
            dict(TRAFFIC.degraded.most_common(5)),
        )
    failures = slo_failures(environment.stats, CONFIG)
    if failures:
        for failure in failures:
            log.error("SLO gate failed: %s", failure)
        environment.process_exit_code = 1
    elif environment.runner is not None and environment.runner.exceptions:
        log.error("SLO gates passed, but the locustfile raised exceptions")
        environment.process_exit_code = 1
    else:
        log.info("all SLO gates passed")
        environment.process_exit_code = 0
