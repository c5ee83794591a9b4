"""An analyst's outcome for a review item: a label through the feedback path, then the
queue entry resolved.

Only the analyst holding the claim records an outcome. ``fraud`` and ``legitimate``
become a label in the pod's label log (source ``analyst``; the queue entry keeps who
decided), exactly as ``POST /v1/feedback`` records one, so it reaches the system of
record and retraining the same way; ``unsure`` resolves the entry without a label. The
label is written first: if resolving then fails, the analyst retries and the label is a
duplicate, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from app.services.label_log import FeedbackStatus, LabelLog
from app.services.record_desk import RecordDesk
from system_of_record.review_queue import ResolveResult, resolve, review_item

Outcome = Literal["fraud", "legitimate", "unsure"]
LABEL_SOURCE = "analyst"


@dataclass(frozen=True)
class OutcomeResult:
    status: ResolveResult | Literal["not_claimed"]
    label: FeedbackStatus | None  # None: no label (unsure, or refused before labelling)


def record_outcome(
    desk: RecordDesk,
    labels: LabelLog,
    transaction_id: str,
    analyst: str,
    outcome: Outcome,
    note: str,
) -> OutcomeResult:
    """Label (unless ``unsure``) and resolve, if ``analyst`` holds the claim (blocking)."""
    item = desk.run(lambda store: review_item(store, transaction_id))
    if item is None:
        return OutcomeResult("missing", None)
    if item.status == "resolved":
        return OutcomeResult("already", None)
    if item.status != "claimed" or item.claimed_by != analyst:
        return OutcomeResult("not_claimed" if item.status == "open" else "not_yours", None)
    label = None
    if outcome != "unsure":
        label = labels.record(transaction_id, outcome == "fraud", LABEL_SOURCE)
    now = datetime.now(UTC)
    status = desk.run(lambda store: resolve(store, transaction_id, analyst, outcome, note, now))
    return OutcomeResult(status, label)
