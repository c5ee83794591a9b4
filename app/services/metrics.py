"""Prometheus metrics of one service process (``GET /metrics``).

Each app gets its own registry, so several apps in one test process do not collide.
Kubernetes runs one uvicorn worker per pod, so per-process metrics are per-pod metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from app.server.limits import REASONS, REFUSALS
from app.services.file_identity import WATCHED_FILES, reopened_total
from app.services.live import SCORING_ROUTES, LiveWindow
from app.services.predictor import Prediction
from feature_repo.online_status import LoadRecord
from fraud_model.arrays import FloatArray

# Importing ``feast.metrics`` sets PROMETHEUS_MULTIPROCESS_DIR, which switches
# prometheus_client to file-backed values shared by every metric of the same name in the
# process, so two registries would count into each other. This service keeps its
# metrics in memory (one worker per pod), whatever was imported first.
values.ValueClass = values.MutexValue

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
FEATURE_STATUSES = ("loaded", "empty", "unreachable", "unavailable")
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


class ServiceMetrics:
    """Request, score, decision, fallback and feature-miss metrics; with ``live``, also
    the rolling window the dashboard's Live page reads."""

    def __init__(self, live: LiveWindow | None = None) -> None:
        self.live = live
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fraud_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fraud_http_request_duration_seconds",
            "Server-side request latency by route template and status code.",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "fraud_score_probability",
            "Calibrated fraud probability of scored transactions.",
            ["source"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "fraud_decisions",
            "Decisions by action and decision source.",
            ["decision", "source"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "fraud_rules_fallback",
            "Transactions scored by the rules because no valid model bundle is loaded.",
            registry=self.registry,
        )
        self.feature_misses = Counter(
            "fraud_feature_misses",
            "Transactions whose online features were missing, stale or unavailable, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "fraud_model_loaded",
            "1 when a verified model bundle is loaded, 0 when scoring with rules.",
            registry=self.registry,
        )
        self.model_reloads = Counter(
            "fraud_model_reload",
            "POST /v1/model/reload by outcome: reloaded, or refused (the old model kept).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("reloaded", "refused"):
            self.model_reloads.labels(outcome)
        self.audit_failures = Counter(
            "fraud_audit_log_failures",
            "Scoring requests answered 503 because the audit log could not be written.",
            registry=self.registry,
        )
        self.shed = Counter(
            "fraud_shed",
            "Scoring requests refused with 503 because the route's admission budget was full.",
            ["route"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "fraud_feedback",
            "Feedback labels by outcome (recorded, duplicate, conflict).",
            ["status"],
            registry=self.registry,
        )

        # The shared system of record (app/services/record_shipper.py)
        self.record_spool = Gauge(
            "fraud_record_spool_rows",
            "Rows acknowledged by this pod and not yet in the system of record, by log.",
            ["log"],
            registry=self.registry,
        )
        self.record_shipped = Counter(
            "fraud_record_shipped_rows",
            "Rows shipped from the local spool to the system of record, by log.",
            ["log"],
            registry=self.registry,
        )
        self.record_labels = Counter(
            "fraud_record_label_outcomes",
            "Labels as the system of record took them (recorded, duplicate, conflict).",
            ["status"],
            registry=self.registry,
        )
        self.record_ship_errors = Counter(
            "fraud_record_ship_errors",
            "Attempts to reach the system of record that failed (rows stay spooled).",
            registry=self.registry,
        )
        self.record_up = Gauge(
            "fraud_record_up",
            "1 when the last attempt to reach the system of record succeeded.",
            registry=self.registry,
        )
        self.pipeline_last_success = Gauge(
            "fraud_pipeline_last_success_timestamp_seconds",
            "Newest successful run of each pipeline job, from the system of record (the label "
            "is `pipeline`: `job` is the scrape's own).",
            ["pipeline"],
            registry=self.registry,
        )

        self.velocity_pushes = Histogram(
            "fraud_velocity_push_seconds",
            "Background pushes of velocity state to the online store (read, merge, write).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.velocity_pushed = Counter(
            "fraud_velocity_pushed_customers",
            "Customer velocity states written to the online store.",
            registry=self.registry,
        )
        self.velocity_failures = Counter(
            "fraud_velocity_push_failures",
            "Velocity pushes that failed (the transactions stay pending and are retried).",
            registry=self.registry,
        )
        self.velocity_pending = Gauge(
            "fraud_velocity_pending_transactions",
            "Scored transactions waiting to be pushed to the velocity state.",
            registry=self.registry,
        )
        self.velocity_dropped = Gauge(
            "fraud_velocity_dropped_transactions",
            "Scored transactions not recorded because too many were pending (cumulative).",
            registry=self.registry,
        )
        self.velocity_clamped = Gauge(
            "fraud_velocity_clamped_transactions",
            "Transactions dated beyond VELOCITY_MAX_FUTURE_SKEW_SECONDS ahead, recorded in the "
            "velocity state at the server's time instead (cumulative).",
            registry=self.registry,
        )

        self.feature_store_up = Gauge(
            "fraud_feature_store_up",
            "1 when the last check of the online store got an answer, 0 when it did not.",
            registry=self.registry,
        )
        self.feature_store_status = Gauge(
            "fraud_feature_store_status",
            "1 for the online store's status after hysteresis (loaded, empty, unreachable, "
            "unavailable), 0 for the others.",
            ["status"],
            registry=self.registry,
        )
        self.feature_checks = Counter(
            "fraud_feature_store_checks",
            "Checks of the online store's load record and canaries, by result.",
            ["result"],
            registry=self.registry,
        )
        self.feature_data_end = Gauge(
            "fraud_feature_store_data_end_seconds",
            "The load record's end: the online data is current up to here (epoch seconds; "
            "0 without a record).",
            registry=self.registry,
        )
        self.feature_loaded_at = Gauge(
            "fraud_feature_store_loaded_at_seconds",
            "When the job that loaded the online store wrote its record (epoch seconds; "
            "0 without a record).",
            registry=self.registry,
        )
        self.lookup_abandoned = Counter(
            "fraud_feature_lookup_abandoned",
            "Lookup threads abandoned (and replaced) because a lookup was stuck.",
            registry=self.registry,
        )
        self.lookup_oldest = Gauge(
            "fraud_feature_lookup_oldest_seconds",
            "Age of the oldest unfinished online feature lookup (0 when none).",
            registry=self.registry,
        )
        # Files that disappear and logs that cannot be written (docs/reliability.md).
        self.registry.register(_ReopenedFiles())
        self.log_writable = Gauge(
            "fraud_log_writable",
            "1 while the log's writes succeed (after hysteresis), 0 once they fail.",
            ["file"],
            registry=self.registry,
        )

        # Fraud operations: the rule set, the review queue (docs/fraud-operations.md)
        self.rule_reloads = Counter(
            "fraud_rules_reloads",
            "Rule-file reloads by outcome (refused: the set in force stays).",
            ["outcome"],
            registry=self.registry,
        )
        self.rule_matches = Counter(
            "fraud_rule_matches",
            "Answered transactions each rule of the rule set matched.",
            ["rule"],
            registry=self.registry,
        )
        self.review_queue = Gauge(
            "fraud_review_queue_items",
            "Review-queue entries by status (read from the system of record).",
            ["status"],
            registry=self.registry,
        )
        self.review_oldest = Gauge(
            "fraud_review_queue_oldest_open_seconds",
            "Age of the oldest open review-queue entry (0 when none is open).",
            registry=self.registry,
        )
        self.review_actions = Counter(
            "fraud_review_actions",
            "Analysts' claims and releases of review-queue entries.",
            ["action"],
            registry=self.registry,
        )
        self.review_outcomes = Counter(
            "fraud_review_outcomes",
            "Outcomes analysts recorded for review-queue entries.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("loaded", "refused"):
            self.rule_reloads.labels(outcome)
        for status in ("open", "claimed", "resolved"):
            self.review_queue.labels(status)
        # The challenger in shadow (app/services/shadow.py)
        self.shadow_scored = Counter(
            "fraud_shadow_scored",
            "Transactions the challenger scored in shadow and handed to the record.",
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "fraud_shadow_dropped",
            "Transactions the challenger did not score, by reason (full, busy, stopped, error).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("full", "busy", "stopped", "error"):
            self.shadow_dropped.labels(reason)
        self.shadow_decisions = Counter(
            "fraud_shadow_decisions",
            "Shadow-scored transactions by the champion's and the challenger's decision.",
            ["champion", "challenger"],
            registry=self.registry,
        )
        self.shadow_scores = Histogram(
            "fraud_shadow_probability",
            "The challenger's calibrated fraud probability of shadow-scored transactions.",
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.shadow_queue = Gauge(
            "fraud_shadow_queue_rows",
            "Transactions waiting for the challenger.",
            registry=self.registry,
        )
        self.shadow_loaded = Gauge(
            "fraud_shadow_loaded",
            "1 while a verified challenger bundle scores in shadow, 0 otherwise.",
            registry=self.registry,
        )

        self.registry.register(_RefusalCollector())

    def observe_feature_check(self, result: str, status: str, record: LoadRecord | None) -> None:
        """One online store check: its raw ``result`` and the ``status`` it leaves."""
        self.feature_checks.labels(result).inc()
        self.feature_store_up.set(0 if result == "unreachable" else 1)
        self.set_feature_status(status)
        self.feature_data_end.set(record.end.timestamp() if record is not None else 0)
        self.feature_loaded_at.set(record.loaded_at.timestamp() if record is not None else 0)

    def set_feature_status(self, status: str) -> None:
        for name in FEATURE_STATUSES:
            self.feature_store_status.labels(name).set(1 if name == status else 0)

    def observe_push(self, customers: int, seconds: float) -> None:
        self.velocity_pushed.inc(customers)
        self.velocity_pushes.observe(seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        code = str(status)
        self.requests.labels(route, method, code).inc()
        self.latency.labels(route, code).observe(seconds)
        if self.live is not None:
            self.live.observe_request(route, status, seconds)

    def observe_predictions(self, predictions: Sequence[Prediction]) -> None:
        for p in predictions:
            # The probability is the model's (or the fallback's), whoever decided.
            model_source = "model" if p.clf_score is not None else "rules_fallback"
            self.scores.labels(model_source).observe(p.fraud_probability)
            self.decisions.labels(p.decision, p.decision_source).inc()
            for rule in p.rules:
                self.rule_matches.labels(rule).inc()
            if p.decision_source == "rules_fallback":
                self.fallbacks.inc()
            for flag in p.degraded:
                self.feature_misses.labels(flag).inc()

    def set_review_queue(self, stats: Mapping[str, Any]) -> None:
        """The queue's counts and oldest open age (``queue_stats``)."""
        for status in ("open", "claimed", "resolved"):
            self.review_queue.labels(status).set(stats.get(status, 0))
        self.review_oldest.set(stats.get("oldest_open_seconds") or 0.0)

    def observe_shadow(
        self, pairs: Mapping[tuple[str, str], int], probabilities: FloatArray
    ) -> None:
        """A chunk the challenger scored: (champion, challenger) decision counts and its
        probabilities."""
        self.shadow_scored.inc(len(probabilities))
        for (champion, challenger), n in pairs.items():
            self.shadow_decisions.labels(champion, challenger).inc(n)
        for p in probabilities.tolist():
            self.shadow_scores.observe(p)

    def observe_shadow_dropped(self, reason: str, rows: int) -> None:
        self.shadow_dropped.labels(reason).inc(rows)

    def set_shadow_queue(self, rows: int) -> None:
        self.shadow_queue.set(rows)

    def set_shadow_loaded(self, loaded: bool) -> None:
        self.shadow_loaded.set(1 if loaded else 0)

    def totals(self) -> dict[str, Any]:
        """Since start-up, read back from the Prometheus counters (what ``/metrics`` says)."""
        return {
            "decisions": _by_label(self.decisions, "decision"),
            "decision_sources": _by_label(self.decisions, "source"),
            "rules_fallback": int(_by_label(self.fallbacks, None).get("", 0)),
            "feature_misses": _by_label(self.feature_misses, "reason"),
            "scoring_responses": {
                f"{route} {status}": n
                for (route, status), n in sorted(
                    _by_labels(self.requests, ("route", "status")).items()
                )
                if route in SCORING_ROUTES
            },
            "model_loaded": self.registry.get_sample_value("fraud_model_loaded") == 1.0,
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RefusalCollector(Collector):
    """``fraud_http_refused_total{reason}``: the HTTP protocol's refusals (app/server/),
    counted outside the app in the process-wide ``REFUSALS``."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "fraud_http_refused",
            "Requests and connections refused by the HTTP edge limits, by reason.",
            labels=["reason"],
        )
        counts = REFUSALS.counts()
        for reason in REASONS:
            family.add_metric([reason], counts.get(reason, 0))
        yield family


class _ReopenedFiles(Collector):
    """``fraud_file_reopened_total{file}``: counted per process by ``file_identity``."""

    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(
            "fraud_file_reopened",
            "Files reopened because their path named another file or none (deleted or "
            "replaced while open).",
            labels=["file"],
        )
        for name in WATCHED_FILES:
            family.add_metric([name], reopened_total(name))
        return [family]


def _by_labels(metric: Counter, labels: tuple[str, ...]) -> dict[tuple[str, ...], int]:
    """A counter's ``_total`` samples summed over every label not in ``labels``."""
    out: dict[tuple[str, ...], int] = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = tuple(sample.labels.get(name, "") for name in labels)
                out[key] = out.get(key, 0) + int(sample.value)
    return out


def _by_label(metric: Counter, label: str | None) -> dict[str, int]:
    keys = (label,) if label is not None else ()
    return {"".join(k): n for k, n in sorted(_by_labels(metric, keys).items())}
