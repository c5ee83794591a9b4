"""Stage ``velocity_gain``: what the streaming velocity features add, on the time-later test set.

The ensemble is trained twice on the same rows, labels, seeds and settings: once on the
inputs of the baseline FeatureService (``fraud_detection_v1``) and once on every input of
the training set's service (``fraud_detection_v2`` = v1 + velocity). Feature lists are read
from the Feast registry, so "v1" is exactly what the v1 service serves. Both models are
scored on v0's time-later test part and on the drifted v1 period, overall and on each
fraud scenario (that scenario's frauds against every legitimate row): AUPRC, recall
within the daily alert budget, and precision/recall at the bundle's alert tier. The burst
scenarios named in ``params.yaml`` (``velocity_gain.burst_scenarios``) are the ones the
velocity features are for. Both runs keep the members the ``train`` stage chose (no
search) and tune on the validation part, to keep the stage's cost at two trainings.
Output: ``metrics/velocity_gain.json`` and ``reports/velocity_gain.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fraud_model.scorer import EnsembleScorer
from training.inputs.feast_store import service_features, training_store
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling import metrics as m
from training.modelling.fit import TrainConfig, train_ensemble
from training.reporting.reports_io import write_json


def columns(frame: Frame, features: list[str], chosen: list[str]) -> Frame:
    """``frame`` restricted to the ``chosen`` features, in that order."""
    index = [features.index(name) for name in chosen]
    return Frame(frame.x[:, index], frame.y, frame.meta)


def scores(scorer: EnsembleScorer, frame: Frame, k: int, bursts: list[str]) -> dict[str, Any]:
    """Overall and per-scenario metrics of one model on one frame."""
    batch = scorer.score(frame.x)
    y, prob, days = frame.y, batch.probability, frame.days
    alert = batch.level_index >= 1
    out: dict[str, Any] = {
        **m.ranking(y, prob),
        "recall_at_budget": m.recall_at_budget(y, prob, days, k),
        "precision_at_k": m.precision_at_k(y, prob, days, k),
        **{f"{key}_at_alert_tier": v for key, v in m.at_threshold(y, alert).items()},
    }
    scenario = frame.meta["fraud_scenario"].to_numpy()
    by_scenario: dict[str, Any] = {}
    for name in sorted(set(scenario[y == 1])):
        rows = (y == 0) | (scenario == name)
        frauds = (scenario == name) & (y == 1)
        by_scenario[str(name)] = {
            "frauds": int(frauds.sum()),
            "auprc": m.ranking(y[rows], prob[rows])["auprc"],
            "recall_at_alert_tier": float(alert[frauds].mean()),
            # The analysts' queue: each day's k highest scores, whatever the scenario.
            "recall_at_budget": m.recall_at_budget(frauds.astype(np.int8), prob, days, k),
            "burst": str(name) in bursts,
        }
    out["scenarios"] = by_scenario
    return out


def gains(baseline: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """Candidate minus baseline for every shared number (recursively)."""
    out: dict[str, Any] = {}
    for key, value in candidate.items():
        if isinstance(value, dict) and isinstance(baseline.get(key), dict):
            out[key] = gains(baseline[key], value)
        elif isinstance(value, float) and isinstance(baseline.get(key), float):
            out[key] = value - baseline[key]
    return out


def markdown(result: dict[str, Any]) -> str:
    """The comparison as tables: overall, then each scenario."""
    names = result["services"]
    lines = [
        "# Velocity features: v1 vs v2 on the time-later data",
        "",
        f"Same rows, labels and settings; `{names['baseline']}` "
        f"({result['features']['baseline']} inputs) vs `{names['candidate']}` "
        f"({result['features']['candidate']} inputs). Budget: {result['k']} alerts a day.",
        "",
    ]
    for period, title in (("test", "v0 test (time-later)"), ("drifted_v1", "v1 (drifted)")):
        base, cand = result["baseline"][period], result["candidate"][period]
        lines += [
            f"## {title}",
            "",
            "| Rows | AUPRC v1 | AUPRC v2 | Recall in budget v1 | v2 | Recall at tier v1 | v2 |",
            "|---|---:|---:|---:|---:|---:|---:|",
            _row("all", base, cand, "recall_at_alert_tier"),
        ]
        for name, b in base["scenarios"].items():
            c = cand["scenarios"][name]
            label = f"{name}{' (burst)' if b['burst'] else ''}, {b['frauds']} frauds"
            lines.append(_row(label, b, c, "recall_at_alert_tier"))
        lines.append("")
    return "\n".join(lines)


def _row(label: str, b: dict[str, Any], c: dict[str, Any], tier: str) -> str:
    cells = [b["auprc"], c["auprc"], b["recall_at_budget"], c["recall_at_budget"], b[tier], c[tier]]
    return f"| {label} | " + " | ".join(f"{v:.4f}" for v in cells) + " |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--train-report", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--out", type=Path, default=Path("metrics/velocity_gain.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/velocity_gain.md"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section = params["velocity_gain"]
    k = int(params["evaluate"]["precision_at_k"])
    train_report = json.loads(args.train_report.read_text())
    selected = train_report["classifier"]["selected"]
    config = TrainConfig.from_params(params["train"]).for_study(
        train_report, params["split"]["val_days"]
    )
    features, parts = load_parts(args.training_set, "v0", ("train", "validation", "test"))
    _, drifted = load_parts(args.training_set, "v1", ("after",))  # as training.evaluate
    store = training_store(args.repo.resolve())
    chosen = {
        "baseline": service_features(store, section["baseline_service"]),
        "candidate": features,
    }
    threads = available_cores()
    result: dict[str, Any] = {
        "services": {
            "baseline": section["baseline_service"],
            "candidate": params["training_set"]["feature_service"],
        },
        "features": {role: len(names) for role, names in chosen.items()},
        "imbalance": selected,
        "k": k,
    }
    for role, names in chosen.items():
        missing = sorted(set(names) - set(features))
        if missing:
            raise SystemExit(f"velocity_gain: training set lacks {missing}")
        started = time.perf_counter()
        trained = train_ensemble(
            columns(Frame.concat([parts["train"], parts["validation"]]), features, names),
            names,
            config,
            threads,
            metadata={"labels": "clean", "feature_service": result["services"][role]},
            log=lambda _: None,
        )
        scorer = EnsembleScorer(trained.bundle, threads)
        result[role] = {
            "test": scores(
                scorer, columns(parts["test"], features, names), k, section["burst_scenarios"]
            ),
            "drifted_v1": scores(
                scorer, columns(drifted["after"], features, names), k, section["burst_scenarios"]
            ),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(
            f"velocity_gain: {role} ({len(names)} inputs) in {result[role]['seconds']}s", flush=True
        )
    result["gain"] = {
        period: gains(result["baseline"][period], result["candidate"][period])
        for period in ("test", "drifted_v1")
    }
    write_json(args.out, result)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(markdown(result) + "\n")
    print(markdown(result), flush=True)


if __name__ == "__main__":
    main()
