"""The challenger model in shadow: scored off the request path, recorded, never answered.

The request path hands each scored batch to :meth:`ShadowScorer.submit`, which only
appends to a bounded queue (or drops with a reason) and returns. One worker thread waits
``linger_s`` after the first submission for a group to gather (or until ``chunk_rows``
wait): the challenger shares the pod's one core, and scored per request its per-call
costs took about 4 % of it at saturation, scored in 100 ms groups about 2 %
(docs/fraud-operations.md). It then takes everything queued, coalesces it into one matrix
and scores it in chunks of
``chunk_rows`` (one ``EnsembleScorer.score`` call per chunk, no reason codes), then hands
the results to the sink (the system of record's ``shadow_scores``). Between chunks the
worker calls ``time.sleep(0)``: scoring a chunk holds the GIL only in short stretches
between numpy calls, and yielding after each chunk lets a waiting request thread run at
once instead of after the whole backlog. Under load the challenger is dropped, never the
champion: submissions are refused while ``busy()`` (the service's queue of single
requests waiting to be scored, ``SHADOW_BUSY_INFLIGHT``) is true or while
``max_queued_rows`` are waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypedDict

import numpy as np

from app.services.model_loader import LoadedModel, load_model
from fraud_model.arrays import FloatArray
from fraud_model.decisions import DECISIONS, RISK_LEVELS
from fraud_model.model import ModelBundle
from fraud_model.scorer import EnsembleScorer

log = logging.getLogger(__name__)

DROP_REASONS = ("full", "busy", "stopped", "error")


@dataclass(frozen=True)
class ShadowResult:
    """One transaction as the challenger scored it, beside the champion's answer."""

    transaction_id: str
    challenger_version: str
    champion_version: str
    fraud_probability: float
    risk_level: str
    decision: str
    champion_decision: str
    champion_probability: float
    scored_at: datetime


class ShadowStats(TypedDict):
    """Rows since start; ``dropped`` by reason (full, busy, stopped, error)."""

    challenger_version: str
    submitted: int
    scored: int
    dropped: dict[str, int]
    agreed: int
    disagreed: int
    queued_rows: int


class ShadowMetrics(Protocol):
    """What the scorer reports; :class:`app.services.metrics.ServiceMetrics` provides it."""

    def observe_shadow(
        self, pairs: Mapping[tuple[str, str], int], probabilities: FloatArray
    ) -> None: ...

    def observe_shadow_dropped(self, reason: str, rows: int) -> None: ...

    def set_shadow_queue(self, rows: int) -> None: ...

    def set_shadow_loaded(self, loaded: bool) -> None: ...


def load_challenger(
    uri: str,
    tracking_uri: str | None,
    expected_features: Sequence[str] | None,
    feature_source: str,
) -> LoadedModel:
    """Load and prove the challenger bundle like the champion (same FeatureService feature
    list); never raises: a refused challenger is ``LoadedModel(bundle=None, problem=...)``."""
    try:
        return load_model(uri, tracking_uri, expected_features, feature_source)
    except Exception as exc:  # load_model catches BundleError; anything else is refusal too
        log.exception("challenger bundle refused")
        return LoadedModel(uri=uri, bundle=None, problem=f"cannot load {uri}: {exc}")


@dataclass(frozen=True)
class _Rows:
    """Queued rows with the champion's answers (one entry per row in every field)."""

    ids: Sequence[str]
    raw: FloatArray
    versions: Sequence[str]
    decisions: Sequence[str]
    probabilities: Sequence[float]

    def part(self, start: int, stop: int) -> _Rows:
        return _Rows(
            self.ids[start:stop],
            self.raw[start:stop],
            self.versions[start:stop],
            self.decisions[start:stop],
            self.probabilities[start:stop],
        )


class ShadowScorer:
    """Scores the challenger on a worker thread; ``submit`` never blocks nor raises."""

    def __init__(
        self,
        bundle: ModelBundle,
        sink: Callable[[list[ShadowResult]], None],
        max_queued_rows: int = 4096,
        busy: Callable[[], bool] = lambda: False,
        metrics: ShadowMetrics | None = None,
        chunk_rows: int = 1024,
        linger_s: float = 0.0,
    ) -> None:
        if max_queued_rows < 1 or chunk_rows < 1:
            raise ValueError("max_queued_rows and chunk_rows must be at least 1")
        self._linger_s = linger_s
        self.version = bundle.version
        self._scorer = EnsembleScorer(bundle)
        self._width = len(bundle.features)
        self._sink = sink
        self._max_rows = max_queued_rows
        self._busy = busy
        self._metrics = metrics
        self._chunk_rows = chunk_rows
        self._cond = threading.Condition()
        self._pending: list[_Rows] = []
        self._queued = 0
        self._stopping = False  # no more submissions; drain then stop
        self._abort = False  # close timed out: drop what is left
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter(dict.fromkeys(DROP_REASONS, 0))
        if metrics is not None:
            metrics.set_shadow_loaded(True)
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def submit(
        self,
        transaction_ids: Sequence[str],
        raw: FloatArray,
        champion_version: str,
        champion_decisions: Sequence[str],
        champion_probabilities: Sequence[float],
    ) -> None:
        """Queue a scored batch for the challenger, or drop it with a reason. ``raw`` (the
        champion's n x d feature matrix) is kept, not copied: do not modify it afterwards."""
        try:
            n = len(transaction_ids)
            busy = self._busy()
            with self._cond:
                self._counts["submitted"] += n
                probs = champion_probabilities
                reason = self._refusal(n, raw, champion_decisions, probs, busy)
                if reason is None:
                    versions = (champion_version,) * n
                    rows = _Rows(transaction_ids, raw, versions, champion_decisions, probs)
                    self._pending.append(rows)
                    self._queued += n
                    self._cond.notify()
                else:
                    self._dropped[reason] += n
                queued = self._queued
            if self._metrics is not None:
                if reason is not None:
                    self._metrics.observe_shadow_dropped(reason, n)
                self._metrics.set_shadow_queue(queued)
        except Exception:  # the request path must never see the shadow fail
            log.exception("shadow submit failed")

    def _refusal(
        self,
        n: int,
        raw: FloatArray,
        decisions: Sequence[str],
        probabilities: Sequence[float],
        busy: bool,
    ) -> str | None:
        if self._stopping:
            return "stopped"
        if raw.shape != (n, self._width) or len(decisions) != n or len(probabilities) != n:
            log.error("shadow submission malformed", extra={"fields": {"shape": raw.shape}})
            return "error"
        if self._queued + n > self._max_rows:
            return "full"
        if busy:
            return "busy"
        return None

    def close(self, timeout_s: float) -> None:
        """Refuse new submissions, score what is queued within ``timeout_s``, then stop.
        Rows not yet scored by then are dropped as ``stopped``; a chunk being scored at
        that moment still finishes (and reaches the sink) on the daemon thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(max(timeout_s, 0.0))
        with self._cond:
            self._abort = True
            left = sum(len(p.ids) for p in self._pending)
            self._pending.clear()
        self._settle(left, reason="stopped")
        if self._metrics is not None:
            self._metrics.set_shadow_loaded(False)

    def stats(self) -> ShadowStats:
        """Counters since start (rows): submitted, scored, dropped by reason, agreed,
        disagreed, queued."""
        with self._cond:
            return {
                "challenger_version": self.version,
                "submitted": self._counts["submitted"],
                "scored": self._counts["scored"],
                "dropped": dict(self._dropped),
                "agreed": self._counts["agreed"],
                "disagreed": self._counts["disagreed"],
                "queued_rows": self._queued,
            }

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                # Let a group gather: one scoring call per group, not per request, is what
                # keeps the challenger's share of the pod's core small.
                deadline = time.monotonic() + self._linger_s
                while not self._stopping and self._queued < self._chunk_rows:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if not self._pending or self._abort:
                    return
                taken, self._pending = self._pending, []
            try:
                self._score_all(taken)
            except Exception:  # pragma: no cover - _score_all contains its own failures
                log.exception("shadow worker error")

    def _score_all(self, taken: list[_Rows]) -> None:
        rows = taken[0] if len(taken) == 1 else _coalesce(taken)
        n = len(rows.ids)
        for start in range(0, n, self._chunk_rows):
            if self._abort:  # close() timed out: the rest of this batch is dropped
                self._settle(n - start, reason="stopped")
                return
            self._score_chunk(rows.part(start, start + self._chunk_rows))
            time.sleep(0)  # hand the GIL back to the request path between chunks

    def _score_chunk(self, rows: _Rows) -> None:
        n = len(rows.ids)
        try:
            batch = self._scorer.score(rows.raw)
            levels = [RISK_LEVELS[i] for i in batch.level_index]
            now = datetime.now(UTC)
            p = batch.probability.tolist()
            results = [
                ShadowResult(
                    rows.ids[i],
                    self.version,
                    rows.versions[i],
                    p[i],
                    levels[i],
                    DECISIONS[levels[i]],
                    rows.decisions[i],
                    float(rows.probabilities[i]),
                    now,
                )
                for i in range(n)
            ]
            self._sink(results)
        except Exception:
            log.exception("shadow scoring failed", extra={"fields": {"rows": n}})
            self._settle(n, reason="error")
            return
        pairs = Counter((r.champion_decision, r.decision) for r in results)
        agreed = sum(k for (champion, challenger), k in pairs.items() if champion == challenger)
        self._settle(n, agreed=agreed, disagreed=n - agreed)
        if self._metrics is not None:
            self._metrics.observe_shadow(pairs, batch.probability)

    def _settle(
        self, n: int, agreed: int = 0, disagreed: int = 0, reason: str | None = None
    ) -> None:
        """``n`` rows leave the queue: scored (with agreement counts) or dropped."""
        with self._cond:
            self._queued -= n
            if reason is None:
                self._counts["scored"] += n
                self._counts["agreed"] += agreed
                self._counts["disagreed"] += disagreed
            else:
                self._dropped[reason] += n
            queued = self._queued
        if self._metrics is not None:
            if reason is not None and n:
                self._metrics.observe_shadow_dropped(reason, n)
            self._metrics.set_shadow_queue(queued)


def _coalesce(taken: list[_Rows]) -> _Rows:
    """Everything queued as one set of rows (one matrix)."""
    return _Rows(
        [t for rows in taken for t in rows.ids],
        np.concatenate([rows.raw for rows in taken]),
        [v for rows in taken for v in rows.versions],
        [d for rows in taken for d in rows.decisions],
        [p for rows in taken for p in rows.probabilities],
    )
