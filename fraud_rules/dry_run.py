"""What a candidate rule set would have done on a recorded period, against a baseline
(the active set, or the model alone): per-rule hits and precision/recall on labelled
rows, and how the decisions would move."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fraud_rules.engine import SEVERITY, CompiledRuleSet, RuleInputs


@dataclass(frozen=True)
class RuleStats:
    id: str
    stage: str
    enabled: bool
    matches: int
    labelled_matches: int
    fraud_matches: int
    precision: float | None  # fraud_matches / labelled_matches
    recall: float | None  # fraud_matches / frauds in the period
    decisions_changed: int  # rows it matched whose decision differs from the baseline's


@dataclass(frozen=True)
class AlertStats:
    count: int  # over every row
    precision: float | None  # on labelled rows
    recall: float | None


@dataclass(frozen=True)
class DryRunReport:
    rows: int
    labelled: int
    frauds: int
    rules: list[RuleStats]
    decisions_before: dict[str, int]
    decisions_after: dict[str, int]
    changed: int
    transitions: dict[str, int]  # "review->decline": rows
    flagged: dict[str, AlertStats]  # "before"/"after": decision != approve
    declined: dict[str, AlertStats]  # "before"/"after": decision == decline

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _decisions(
    rule_set: CompiledRuleSet | None,
    inputs: RuleInputs,
    model_decisions: Sequence[str],
    model_levels: Sequence[str],
    model_source: str,
) -> np.ndarray:
    if rule_set is None:
        return np.asarray(model_decisions, dtype=object)
    outcomes = rule_set.decide(inputs, model_decisions, model_levels, model_source)
    return np.array(
        [o.decision if o else d for o, d in zip(outcomes, model_decisions, strict=True)],
        dtype=object,
    )


def _alerts(alert: np.ndarray, labels: np.ndarray) -> AlertStats:
    labelled = labels >= 0
    hits = int((alert & (labels == 1)).sum())
    return AlertStats(
        count=int(alert.sum()),
        precision=_ratio(hits, int((alert & labelled).sum())),
        recall=_ratio(hits, int((labels == 1).sum())),
    )


def dry_run(
    candidate: CompiledRuleSet,
    baseline: CompiledRuleSet | None,
    inputs: RuleInputs,
    model_decisions: Sequence[str],
    model_levels: Sequence[str],
    model_source: str,
    labels: np.ndarray,
) -> DryRunReport:
    """Replay ``candidate`` and ``baseline`` (None: the model alone) over the same rows.
    ``labels`` holds 1 fraud, 0 legitimate, -1 unknown per row."""
    labels = np.asarray(labels, dtype=np.int8)
    before = _decisions(baseline, inputs, model_decisions, model_levels, model_source)
    after = _decisions(candidate, inputs, model_decisions, model_levels, model_source)
    differs = before != after
    fraud, labelled = labels == 1, labels >= 0
    frauds = int(fraud.sum())
    matrix = candidate.matches(inputs, vectorised=True)
    stats = []
    for j, meta in enumerate(candidate.rules):
        hit = matrix[:, j]
        fraud_hits = int((hit & fraud).sum())
        stats.append(
            RuleStats(
                id=meta.id,
                stage=meta.stage,
                enabled=meta.enabled,
                matches=int(hit.sum()),
                labelled_matches=int((hit & labelled).sum()),
                fraud_matches=fraud_hits,
                precision=_ratio(fraud_hits, int((hit & labelled).sum())),
                recall=_ratio(fraud_hits, frauds),
                decisions_changed=int((hit & differs).sum()),
            )
        )
    moves = Counter(f"{b}->{a}" for b, a in zip(before[differs], after[differs], strict=True))
    return DryRunReport(
        rows=inputs.n,
        labelled=int(labelled.sum()),
        frauds=frauds,
        rules=stats,
        decisions_before={d: int((before == d).sum()) for d in SEVERITY},
        decisions_after={d: int((after == d).sum()) for d in SEVERITY},
        changed=int(differs.sum()),
        transitions=dict(sorted(moves.items())),
        flagged={
            "before": _alerts(before != "approve", labels),
            "after": _alerts(after != "approve", labels),
        },
        declined={
            "before": _alerts(before == "decline", labels),
            "after": _alerts(after == "decline", labels),
        },
    )
