"""The replay's numbers: quality per simulated day and overall, latency, errors,
degradation and feedback, as JSON (``null`` where a ratio is undefined, never NaN).

Quality counts answered transactions only: an *alert* is any decision but ``approve``,
the *truth* is ``is_fraud``. precision = TP / alerts, recall = TP / frauds, F1 = 2 TP /
(alerts + frauds) (the harmonic mean of the two, defined whenever either count is
positive). A ratio whose denominator is 0 is ``null``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.replay.runner import Answer, Run
from benchmarks.replay.stream import Transaction, alerted

SUMMARY_VERSION = 1


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Confusion:
    """Alert counts against the truth for a set of transactions."""

    transactions: int = 0
    frauds: int = 0
    alerts: int = 0
    true_positives: int = 0

    def add(self, is_fraud: bool, alert: bool) -> None:
        self.transactions += 1
        self.frauds += is_fraud
        self.alerts += alert
        self.true_positives += is_fraud and alert

    @property
    def precision(self) -> float | None:
        return ratio(self.true_positives, self.alerts)

    @property
    def recall(self) -> float | None:
        return ratio(self.true_positives, self.frauds)

    @property
    def f1(self) -> float | None:
        return ratio(2 * self.true_positives, self.alerts + self.frauds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "alerts": self.alerts,
            "true_positives": self.true_positives,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
        }


def quality(pairs: Iterable[tuple[Transaction, Answer]]) -> dict[str, Any]:
    """Per simulated UTC day and overall, recall per fraud scenario, decision counts."""
    overall = Confusion()
    days: dict[str, Confusion] = {}
    scenarios: dict[str, Confusion] = {}
    decisions: Counter[str] = Counter()
    for tx, answer in pairs:
        alert = alerted(answer.decision)
        overall.add(tx.is_fraud, alert)
        days.setdefault(tx.day, Confusion()).add(tx.is_fraud, alert)
        if tx.is_fraud:
            scenarios.setdefault(tx.scenario, Confusion()).add(True, alert)
        decisions[answer.decision] += 1
    return {
        "overall": overall.as_dict(),
        "by_day": [{"date": day, **days[day].as_dict()} for day in sorted(days)],
        "recall_by_scenario": [
            {
                "scenario": name,
                "frauds": c.frauds,
                "caught": c.true_positives,
                "recall": _round(c.recall),
            }
            for name, c in sorted(scenarios.items())
        ],
        "decisions": dict(sorted(decisions.items())),
    }


def percentiles(values: Sequence[float], quantiles: Sequence[float]) -> dict[str, float | None]:
    """``p<q>`` (linear interpolation) for each quantile, and ``max``; None without values."""
    keys = [f"p{q:g}" for q in quantiles] + ["max"]
    if not values:
        return dict.fromkeys(keys)
    array = np.asarray(values, dtype=np.float64)
    found = [float(v) for v in np.percentile(array, list(quantiles))] + [float(array.max())]
    return {k: round(v, 3) for k, v in zip(keys, found, strict=True)}


def _counts(counter: Counter[str]) -> dict[str, int]:
    """Largest first, then by name: the same order every run."""
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_exposure(path: Path, sent: Sequence[Transaction]) -> dict[str, Any]:
    """How many sent transactions are older than the online store's batch snapshot, as
    recorded by the ``materialize`` stage: their stored features were computed from data
    after them (look-ahead), which flatters the quality numbers."""
    record = json.loads(path.read_text())
    start = datetime.fromisoformat(record["backfill_start"]).timestamp()
    end = datetime.fromisoformat(record["end"]).timestamp()
    before_start = sum(1 for tx in sent if tx.seconds < start)
    before_end = sum(1 for tx in sent if tx.seconds < end)
    return {
        "record": str(path),
        "snapshot_start": _iso(start),
        "snapshot_end": _iso(end),
        "sent_before_snapshot_start": before_start,
        "sent_before_snapshot_end": before_end,
        "share_before_snapshot_start": _round(ratio(before_start, len(sent))),
    }


def build(
    transactions: Sequence[Transaction],
    run: Run,
    settings: dict[str, Any],
    service: dict[str, Any] | None,
    snapshot: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole summary; ``settings`` describes the run (data, url, rate, ...)."""
    sent = transactions[: run.sent]
    pairs: list[tuple[Transaction, Answer]] = []
    errors: Counter[str] = Counter()
    for tx, outcome in zip(sent, run.outcomes, strict=False):
        if isinstance(outcome, Answer):
            pairs.append((tx, outcome))
        elif outcome is not None:
            errors[outcome] += 1
    answers = [a for _, a in pairs]
    degraded_flags: Counter[str] = Counter(flag for a in answers for flag in a.degraded)
    degraded = sum(1 for a in answers if a.degraded)
    feedback = run.feedback
    return {
        "summary_version": SUMMARY_VERSION,
        "run": {
            **settings,
            "rows_planned": len(transactions),
            "rows_sent": run.sent,
            "rows_not_sent": len(transactions) - run.sent,
            "simulated_start": _iso(sent[0].seconds) if sent else None,
            "simulated_end": _iso(sent[-1].seconds) if sent else None,
            "achieved_rps": _round(ratio(len(answers), run.answer_seconds), 2),
            "send_seconds": round(run.send_seconds, 3),
            "answer_seconds": round(run.answer_seconds, 3),
            "late_sends": run.late,
            "waited_for_connection": run.waited_for_connection,
            "same_customer_in_flight": run.same_customer_in_flight,
            "replaced_idle_connections": run.replaced_idle,
            "stopped_by_time_limit": run.stopped_by_time_limit,
            "interrupted": run.interrupted,
        },
        "service": service,
        "answers": {
            "answered": len(answers),
            "failed": sum(errors.values()),
            "excluded_from_quality": sum(errors.values()),
        },
        "quality": quality(pairs),
        "latency_ms": {
            "from_due": percentiles([a.latency_s * 1000.0 for a in answers], (50, 95, 99)),
            "service": percentiles([a.service_ms for a in answers], (50, 99)),
        },
        "errors": {
            "total": sum(errors.values()),
            "by_kind": _counts(errors),
            "first_of_kind": {k: run.examples.get(k, "") for k in _counts(errors)},
        },
        "degraded": {
            "answers": degraded,
            "share": _round(ratio(degraded, len(answers))),
            "by_flag": _counts(degraded_flags),
            "decision_source": _counts(Counter(a.decision_source for a in answers)),
            "model_versions": _counts(Counter(a.model_version for a in answers)),
        },
        "feedback": {
            "posted": feedback.posted,
            "ok": feedback.ok,
            "by_source": _counts(feedback.by_source),
            "outcomes": _counts(feedback.outcomes),
            "errors": _counts(feedback.errors),
            "pending": feedback.pending,
            "due_not_posted": feedback.due_not_posted,
        },
        "features_snapshot": snapshot,
    }


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write(summary: dict[str, Any], out: Path, markdown: str) -> Path:
    """Write ``out`` (JSON) and the Markdown next to it; returns the Markdown's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(finite(summary), indent=2, allow_nan=False) + "\n")
    md = out.with_suffix(".md")
    md.write_text(markdown)
    return md
