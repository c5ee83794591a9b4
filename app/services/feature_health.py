"""Does the online store hold data for the FeatureService? Checked off the request path.

A check reads the store's load record (:mod:`feature_repo.online_status`, written by the
job that loads the store) and then looks the record's canary entities up through the
service's own read path (:meth:`OnlineFeatures.missing_canaries`, on a second reader with
its own connections). It ends in one of three results:

- ``loaded``       the record is there and every canary is found;
- ``empty``        the store answers but has no record for the service, or a canary is
                   missing (a flushed or never-loaded store, another project's store);
- ``unreachable``  the store did not answer: connection refused, a timeout, or no answer
                   within ``timeout_s`` (the check runs on its own worker thread, and
                   while a timed-out check still hangs no second one is started).

The check runs once at start-up and then every ``interval_s`` on a daemon thread, never
on the event loop, so ``/readyz`` only reads the outcome. The reported status follows
the results with hysteresis: it changes only after ``consecutive`` results in a row
that differ from it, except that a pod that has not yet seen its store loaded becomes
``loaded`` at the first loaded result. ``/readyz`` (``app/api/routes/health.py``) maps
the status to ready or not; :mod:`app.services.metrics` exports it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Literal

from app.services.features import FeatureStoreError, OnlineFeatures
from app.services.metrics import ServiceMetrics
from app.services.worker import Worker
from feature_repo.online_status import LoadRecord, read_load_record

log = logging.getLogger(__name__)

CheckStatus = Literal["loaded", "empty", "unreachable"]
SUPPORTED_STORES = ("sqlite", "redis")


@dataclass(frozen=True)
class Check:
    """One check's result; ``record`` is the load record it read, if any."""

    status: CheckStatus
    record: LoadRecord | None
    detail: str | None
    at: float  # epoch seconds


@dataclass(frozen=True)
class FeatureState:
    """What the checks concluded so far (replaced whole, so readers see one state)."""

    status: CheckStatus
    ever_loaded: bool  # this process has seen the store loaded
    record: LoadRecord | None  # the newest record read (kept while unreachable)
    last: Check
    since: float  # epoch seconds when ``status`` took its value

    @property
    def ready(self) -> bool:
        """Loaded, or loaded before and now unreachable (a transient outage: serve
        degraded rather than take every pod out at once)."""
        return self.status == "loaded" or (self.status == "unreachable" and self.ever_loaded)


class FeatureStoreHealth:
    """Checks one FeatureService's online store at start-up and then periodically."""

    def __init__(
        self,
        features: OnlineFeatures,
        interval_s: float = 10.0,
        timeout_s: float = 2.0,
        consecutive: int = 3,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        if features.store_type not in SUPPORTED_STORES:
            raise FeatureStoreError(
                f"readiness cannot check a {features.store_type!r} online store "
                f"(only {', '.join(SUPPORTED_STORES)} hold a load record)"
            )
        self.service_name = features.service_name
        self.store_type = features.store_type
        self._store = features.store
        self._reader = features.twin()
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.consecutive = consecutive
        self._metrics = metrics
        self._worker = Worker("feature-check")
        self._running: Future[Check] | None = None
        self._streak: tuple[CheckStatus | None, int] = (None, 0)
        self.state: FeatureState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def probe(self) -> Check:
        """One check, on the calling thread, without a time limit."""
        try:
            record = read_load_record(self._store, self.service_name)
            if record is None:
                return Check("empty", None, f"no load record for {self.service_name}", time.time())
            canaries = {view: load.canary for view, load in record.views.items()}
            missing = self._reader.missing_canaries(canaries)
        except Exception as exc:
            return Check("unreachable", None, f"{type(exc).__name__}: {exc}", time.time())
        if missing:
            detail = f"load record of {record.end.isoformat()}, but not found: {missing}"
            return Check("empty", record, detail, time.time())
        return Check("loaded", record, None, time.time())

    def check(self) -> FeatureState:
        """Run one check on the check thread within ``timeout_s`` and take its result."""
        if self._running is not None and not self._running.done():
            result = Check("unreachable", None, "the previous check has not returned", time.time())
        else:
            self._running = self._worker.submit(self.probe)
            try:
                result = self._running.result(timeout=self.timeout_s)
            except FutureTimeout:
                detail = f"no answer within {self.timeout_s:g} s"
                result = Check("unreachable", None, detail, time.time())
            except Exception as exc:  # probe() catches the store's errors: a bug
                result = Check("unreachable", None, repr(exc), time.time())
        return self.observe(result)

    def observe(self, result: Check) -> FeatureState:
        """Fold one result into the state (the hysteresis lives here)."""
        state = self.state
        if state is None or (result.status == "loaded" and not state.ever_loaded):
            changed = True
        elif result.status == state.status:
            changed = False
            self._streak = (None, 0)
        else:
            status, count = self._streak
            count = count + 1 if status == result.status else 1
            self._streak = (result.status, count)
            changed = count >= self.consecutive
        if changed:
            self._streak = (None, 0)
            ever = result.status == "loaded" or (state is not None and state.ever_loaded)
            record = result.record
            if result.status == "unreachable" and state is not None:
                record = state.record  # what the store held when it last answered
            new = FeatureState(result.status, ever, record, result, result.at)
            if state is None or state.status != result.status:
                log.warning(
                    "online store status",
                    extra={"fields": {"status": result.status, "detail": result.detail}},
                )
        else:
            assert state is not None
            record = result.record if result.status != "unreachable" else state.record
            if result.status == "empty" and state.status == "loaded":
                record = state.record  # not yet believed
            new = replace(state, record=record, last=result)
        self.state = new
        if self._metrics is not None:
            self._metrics.observe_feature_check(result.status, new.status, new.record)
        return new

    def start(self) -> None:
        """Check periodically on a daemon thread (``interval_s`` 0: never again)."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="feature-health", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # never let the checker die silently
                log.exception("online store check failed")

    def close(self) -> None:
        self._stop.set()
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
        self._reader.close()
