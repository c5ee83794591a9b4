"""Promotion after the shadow period: the gate's decision, informed by shadow results.

With ``evaluate.promotion: after_shadow`` a new version waits as ``challenger``, the
offline gate's verdict on it kept as model-version tags; the service scores it in shadow
beside the champion (``CHALLENGER_URI``) and the system of record compares the two on the
same transactions (:func:`system_of_record.shadow.shadow_summary`). This step reads both
and moves ``champion`` to the challenger only when the offline gate passed, at least
``promote.min_labelled`` shadow rows of the last ``promote.window_days`` days are labelled
and the challenger's alert (decision != approve) recall and precision on them each trail
the champion's by at most ``promote.tolerance``. Verdicts: ``promote``; ``wait`` (too little
evidence yet); ``refuse`` (failed offline, or worse in shadow); ``none`` (no challenger,
or it is already the champion). The verdict goes to ``--out`` and, as ``promote.*`` tags,
onto the version.

    python -m training.promote --record-url URL [--password-file F] [--params params.yaml]
        [--out metrics/promote.json]

Exit 0 with any verdict, 2 when the record or the registry cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from system_of_record.shadow import shadow_summary
from system_of_record.store import RecordStore, RecordUnavailable, open_store
from training.inputs.params import load_params
from training.tracking import registry


@dataclass(frozen=True)
class PromoteParams:
    """``params.yaml`` ``promote``: the evidence a verdict needs."""

    min_labelled: int
    tolerance: float
    window_days: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PromoteParams:
        section = params["promote"]
        return cls(
            int(section["min_labelled"]), float(section["tolerance"]), int(section["window_days"])
        )


def decide(offline: str | None, shadow: dict[str, Any] | None, p: PromoteParams) -> tuple[str, str]:
    """The verdict and its one-sentence reason from the offline gate tag (passes, fails or
    None when the version carries none) and the challenger's shadow summary entry (None
    when it has no shadow rows in the window). A precision left undefined (nothing
    flagged) counts as 0."""
    if offline != "passes":
        why = "failed the offline gate" if offline == "fails" else "carries no offline verdict"
        return "refuse", f"the challenger {why}"
    labelled = shadow["labelled"] if shadow else 0
    if labelled < p.min_labelled:
        return "wait", (
            f"{labelled} labelled shadow rows in the last {p.window_days} days, "
            f"{p.min_labelled} needed"
        )
    assert shadow is not None
    if not shadow["frauds"]:
        return "wait", f"no fraud among the {labelled} labelled shadow rows: recall is undefined"
    worse = []
    for metric in ("recall", "precision"):
        challenger = shadow[f"challenger_{metric}"] or 0.0
        champion = shadow[f"champion_{metric}"] or 0.0
        if challenger < champion - p.tolerance:
            worse.append(f"alert {metric} {challenger:.3f} vs the champion's {champion:.3f}")
    if worse:
        return "refuse", (
            f"worse in shadow on {labelled} labelled rows: {' and '.join(worse)} "
            f"(tolerance {p.tolerance})"
        )
    return "promote", (
        f"passed offline and in shadow on {labelled} labelled rows: alert recall "
        f"{shadow['challenger_recall']:.3f} vs {shadow['champion_recall'] or 0.0:.3f}, "
        f"precision {shadow['challenger_precision'] or 0.0:.3f} vs "
        f"{shadow['champion_precision'] or 0.0:.3f} (tolerance {p.tolerance})"
    )


def promote(
    mlflow: Any, model_name: str, store: RecordStore, p: PromoteParams, now: datetime
) -> dict[str, Any]:
    """Decide on the ``challenger`` version, move ``champion`` on ``promote``, tag the
    version with the verdict, and return the report."""
    client = mlflow.MlflowClient()
    champion = registry.alias_version(mlflow, model_name, registry.CHAMPION)
    challenger = registry.alias_version(mlflow, model_name, registry.CHALLENGER)
    since = now - timedelta(days=p.window_days)
    report: dict[str, Any] = {
        "model_name": model_name,
        "challenger": challenger,
        "champion_before": champion,
        "champion_after": champion,
        "params": {
            "min_labelled": p.min_labelled,
            "tolerance": p.tolerance,
            "window_days": p.window_days,
        },
        "since": since.isoformat(),
        "decided_at": now.isoformat(),
    }
    if challenger is None or challenger == champion:
        what = "no challenger" if challenger is None else f"v{challenger} is already champion"
        return {**report, "verdict": "none", "reason": f"nothing to decide: {what}"}
    tags = client.get_model_version(model_name, challenger).tags
    bundle_version = tags.get(registry.BUNDLE_VERSION)
    shadow = next(
        (
            row
            for row in shadow_summary(store, since)
            if bundle_version and row["challenger_version"] == bundle_version
        ),
        None,
    )
    verdict, reason = decide(tags.get(registry.GATE_OFFLINE), shadow, p)
    if verdict == "promote":
        client.set_registered_model_alias(model_name, registry.CHAMPION, challenger)
        report["champion_after"] = challenger
    report.update(
        verdict=verdict,
        reason=f"v{challenger}: {reason}",
        bundle_version=bundle_version,
        offline_gate=tags.get(registry.GATE_OFFLINE),
        offline_reason=tags.get(registry.GATE_REASON),
        shadow=shadow,
    )
    numbers = {k: v for k, v in (shadow or {}).items() if isinstance(v, int | float)}
    for key, value in {"verdict": verdict, "reason": report["reason"], **numbers}.items():
        client.set_model_version_tag(model_name, challenger, f"promote.{key}", str(value))
    client.set_model_version_tag(model_name, challenger, "promote.decided_at", now.isoformat())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record-url", required=True, help="the system of record")
    parser.add_argument("--password-file", type=Path, help="the record's database password")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("metrics/promote.json"))
    args = parser.parse_args(argv)
    from mlflow.exceptions import MlflowException  # an unreachable tracking server

    store = None
    try:
        params = load_params(args.params)
        p = PromoteParams.from_params(params)
        mlflow = registry.configure(params["evaluate"]["experiment"])
        store = open_store(args.record_url, args.password_file)
        report = promote(mlflow, params["evaluate"]["model_name"], store, p, datetime.now(UTC))
    except (RecordUnavailable, MlflowException, OSError, KeyError, ValueError) as exc:
        print(f"promote: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        if store is not None:
            store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"promote: {report['verdict']}: {report['reason']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
