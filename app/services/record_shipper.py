"""Ship the pod's spooled decisions and labels to the shared system of record.

Requests never wait for the database: a score is answered once its row is committed to
the local audit log (:mod:`app.services.prediction_log`) and a label once it is in the
local label log; this thread copies both to the system of record
(:mod:`system_of_record`) in id order, in batches, and then records how far it got in the
local files. A crash between the database's commit and that record ships the same rows
again, which the system of record ignores (idempotent per transaction id), so every
acknowledged row arrives exactly once in effect.

While the database is unreachable the rows wait in the local files (the *spool*) and the
thread retries with exponential backoff; ``fraud_record_spool_rows`` shows the backlog and
``/readyz`` reports the system of record ``unavailable`` (the pod keeps scoring). Past
``RECORD_SPOOL_MAX_ROWS`` waiting decisions the audit log refuses new rows (503) and
``/readyz`` fails, so nothing is acknowledged that could be lost. On shutdown the thread
drains what it can within ``RECORD_DRAIN_SECONDS``; what is left stays in the spool for the
next start of the pod (kept across container restarts by the emptyDir).

The thread also reads each pipeline job's newest success from the system of record once
a minute (``RECORD_JOBS_REFRESH_SECONDS``), for
``fraud_pipeline_last_success_timestamp_seconds`` (the alert rules' input).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from app.services.label_log import LabelLog
from app.services.metrics import ServiceMetrics
from app.services.prediction_log import PredictionLog
from app.services.record_rows import decision_row, review_reason, shadow_row
from app.services.rulebook import Rulebook
from app.services.shadow_log import ShadowLog
from system_of_record.review_queue import queue_stats
from system_of_record.rows import LabelRow
from system_of_record.rule_lists import list_entries
from system_of_record.shadow import write_shadow
from system_of_record.store import RecordStore, RecordUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 10.0


@dataclass
class ShipperState:
    """What ``/readyz`` reports: ``shipping`` (the last attempt reached the database) or
    ``unavailable`` (with why and since when)."""

    status: str = "shipping"
    detail: str | None = None
    since: float = 0.0


class RecordShipper:
    """One background thread per process (see the module docstring)."""

    def __init__(
        self,
        store: RecordStore,
        audit: PredictionLog,
        labels: LabelLog,
        metrics: ServiceMetrics,
        batch: int = 1_000,
        interval_s: float = 0.2,
        jobs_refresh_s: float = 60.0,
        *,
        review_sample_rate: float = 0.0,
        shadow: ShadowLog | None = None,
        rulebook: Rulebook | None = None,
        lists_refresh_s: float = 10.0,
    ) -> None:
        self.store = store
        self.audit = audit
        self.labels = labels
        self.metrics = metrics
        self.batch = batch
        self.interval_s = interval_s
        self.jobs_refresh_s = jobs_refresh_s
        self.review_sample_rate = review_sample_rate
        self.shadow = shadow
        self.rulebook = rulebook
        self.lists_refresh_s = lists_refresh_s
        self.state = ShipperState(since=time.time())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._jobs_read = 0.0
        self._lists_read = 0.0

    def start(self) -> None:
        """Reach the database once now (so the connection, the jobs' metrics and the
        readiness exist from start-up: a database that is away is reported, not waited
        for), then ship in the background."""
        try:
            self._refresh_jobs()
            self._succeeded()
        except RecordUnavailable as exc:
            self._failed(str(exc))
        self._thread = threading.Thread(target=self._run, name="record-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            try:
                moved = self.ship_once()
                self._refresh_jobs()
            except RecordUnavailable as exc:
                self._failed(str(exc))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                self._stop.wait(backoff)
                continue
            except Exception as exc:  # a local file problem: the logs' health says more
                log.exception("record shipper: unexpected error")
                self._failed(f"{type(exc).__name__}: {exc}")
                self._stop.wait(MAX_BACKOFF_SECONDS)
                continue
            backoff = self.interval_s
            if moved < self.batch:  # caught up: wait for more
                self._stop.wait(self.interval_s)

    def ship_once(self) -> int:
        """Ship one batch of decisions and one of labels; returns the rows moved."""
        decisions = self.audit.unshipped(self.batch)
        if decisions:
            queue = [
                (record.transaction_id, why)
                for _, record in decisions
                if (why := review_reason(record, self.review_sample_rate)) is not None
            ]
            self.store.write_decisions([decision_row(record) for _, record in decisions], queue)
            self.audit.mark_shipped(decisions[-1][0])
            self.metrics.record_shipped.labels("decisions").inc(len(decisions))
        labels, labels_through, conflicts_through = self.labels.unshipped(self.batch)
        if labels:
            outcomes = self.store.write_labels(
                [
                    LabelRow(tx, is_fraud, source, datetime.fromisoformat(received))
                    for tx, is_fraud, source, received in labels
                ]
            )
            for outcome in outcomes:
                self.metrics.record_labels.labels(outcome).inc()
            self.metrics.record_shipped.labels("labels").inc(len(labels))
            self.labels.mark_shipped(labels_through, conflicts_through)
        shadow = self.shadow.unshipped(self.batch) if self.shadow is not None else []
        if shadow and self.shadow is not None:
            write_shadow(self.store, [shadow_row(record) for _, record in shadow])
            self.shadow.mark_shipped(shadow[-1][0])
            self.metrics.record_shipped.labels("shadow_scores").inc(len(shadow))
        self._succeeded()
        self.metrics.record_spool.labels("decisions").set(self.audit.backlog)
        self.metrics.record_spool.labels("labels").set(self.labels.backlog())
        return len(decisions) + len(labels) + len(shadow)

    def _refresh_jobs(self) -> None:
        """Now and then: the jobs' last successes and the review queue's counts (for the
        metrics), and the rule lists (for the rule set in force)."""
        now = time.monotonic()
        if self.rulebook is not None and (
            not self._lists_read or now - self._lists_read >= self.lists_refresh_s
        ):
            self.refresh_lists()
        if self._jobs_read and now - self._jobs_read < self.jobs_refresh_s:
            return
        for job, finished in self.store.last_successes().items():
            self.metrics.pipeline_last_success.labels(job).set(finished)
        self.metrics.set_review_queue(queue_stats(self.store, datetime.now(UTC)))
        self._jobs_read = now

    def refresh_lists(self) -> None:
        """Read the rule lists from the record into the rule set in force."""
        if self.rulebook is None:
            return
        version, entries = list_entries(self.store)
        self.rulebook.apply_lists(version, entries)
        self._lists_read = time.monotonic()

    def _succeeded(self) -> None:
        if self.state.status != "shipping":
            log.info("system of record reachable again", extra={"fields": {}})
            self.state = ShipperState(since=time.time())
        self.metrics.record_up.set(1)

    def _failed(self, why: str) -> None:
        self.metrics.record_ship_errors.inc()
        self.metrics.record_up.set(0)
        self.metrics.record_spool.labels("decisions").set(self.audit.backlog)
        if self.state.status != "unavailable":
            log.warning(
                "system of record unavailable: spooling",
                extra={"fields": {"target": self.store.target.describe(), "why": why}},
            )
            self.state = ShipperState("unavailable", why, time.time())
        else:
            self.state.detail = why

    def drain(self, timeout_s: float) -> int:
        """Stop the thread, then ship until the spool is empty or ``timeout_s`` passes;
        returns the decisions still waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.ship_once() == 0:
                    break
            except (RecordUnavailable, OSError) as exc:
                log.warning("shutdown: spool not drained", extra={"fields": {"why": str(exc)}})
                break
        self.store.close()
        return self.audit.backlog
