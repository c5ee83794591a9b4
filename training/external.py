"""Train and evaluate the ensemble on a public data set, with the project's own code.

``python -m training.external --schema {ulb,handbook} --data FILE.csv[.gz] --out M.json``
fits the full ensemble (``training.modelling.fit.train_ensemble``, ``params.yaml``
section ``train``) and scores the time-later test part with the service's scorer
(``training.modelling.evaluation.evaluate_frame``).

Schemas:

* ``ulb``: the ULB credit-card data set, ``Time, V1..V28, Amount, Class`` (``Time`` in
  seconds since the first transaction, no entity ids). Features: ``V1..V28``, the amount,
  its ``log1p`` and the hour of day ``(Time mod 86400) / 3600``. Timestamps are
  2013-09-01 UTC plus ``Time``; every row is its own card. Default gap: 0 days.
* ``handbook``: the Fraud Detection Handbook's simulated transactions,
  ``TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD`` (other
  columns ignored, except ``TX_FRAUD_SCENARIO`` which, when present, feeds recall by
  scenario). Customer and terminal window features come from the batch feature job
  (``training.featurejob``, on Spark, with the label delay), joined as Feast does: the
  latest daily snapshot at or before the transaction and at most 2 days old (the TTL),
  else missing.
  Request-time features come from ``feature_repo.request_features``; the fields this
  schema lacks (channel, entry mode, merchant category, ...) get their documented defaults.
  Default gap: the label delay (``features.label_delay_days``, 7 days).

Split, by time and never at random: over the span ``t0..t1``, the test part is every row
at or after ``t1 - test_fraction * (t1 - t0)``; the ``gap_days`` before it are dropped
(labels not yet known when the model would be deployed); of the rows before the gap, the
last 20 % of their span is validation and the rest is train. The hyperparameter search and
every selection run on ``train.selection.folds`` prequential folds whose windows cover the
validation part, each after its own gap; the final members are refitted on train and
validation together (:func:`external_folds`, :mod:`training.modelling.folds`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.inputs.frames import Frame, available_cores
from training.inputs.params import load_params
from training.inputs.public_data import (
    DEFAULT_TEST_FRACTION,
    SCHEMAS,
    build_dataset,
    check_parts,
    default_gap_days,
    read_table,
    split_by_time,
)
from training.modelling.folds import external_folds


def log(message: str) -> None:
    print(message, flush=True)


# --- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", choices=SCHEMAS, required=True)
    parser.add_argument("--data", type=Path, required=True, help="CSV or CSV.GZ file")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument(
        "--test-fraction", type=float, default=DEFAULT_TEST_FRACTION, help="of the time span"
    )
    parser.add_argument(
        "--gap-days",
        type=float,
        default=None,
        help="dropped before the test part (default: 0 for ulb, the label delay for handbook)",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--bundle", type=Path, default=None, help="also write the bundle here")
    parser.add_argument(
        "--mlflow", action="store_true", help="track an MLflow run with the search's trials"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from fraud_model.bundle import write_bundle
    from fraud_model.scorer import EnsembleScorer
    from training.modelling.evaluation import evaluate_frame
    from training.modelling.fit import TrainConfig, keras_parity, train_ensemble

    args = parse_args(argv)
    started = time.perf_counter()
    phases: dict[str, float] = {}
    params = load_params(args.params)
    config = TrainConfig.from_params(params["train"])
    gap_days = args.gap_days
    if gap_days is None:
        gap_days = default_gap_days(args.schema, params)

    log(f"external: reading {args.data} (schema {args.schema})")
    raw = read_table(args.data, args.schema)
    phases["read"] = time.perf_counter() - started
    log(f"external: {len(raw):,} rows in {phases['read']:.1f}s")

    mark = time.perf_counter()
    log("external: computing features")
    dataset = build_dataset(raw, args.schema, params)
    del raw
    features = dataset.features
    split = split_by_time(dataset.frame, args.test_fraction, gap_days)
    summary, edges = split.summary, split.edges
    phases["features"] = time.perf_counter() - mark
    log(
        f"external: {len(features)} features in {phases['features']:.1f}s; "
        + ", ".join(f"{p} {s['rows']:,} rows ({s['fraud']:,} fraud)" for p, s in summary.items())
    )
    check_parts(summary)
    train, val, test = (split.part(p) for p in ("train", "validation", "test"))
    dev = Frame.concat([train, val])
    del dataset, split

    mark = time.perf_counter()
    threads = available_cores()
    config = replace(config, selection=external_folds(config.selection, edges, gap_days))
    log(f"external: training on {len(dev):,} rows, {threads} cores")
    result = train_ensemble(
        dev,
        features,
        config,
        threads=threads,
        metadata={"feature_service": f"external:{args.schema}", "labels": "clean"},
        log=log,
    )
    parity = keras_parity(result, val)
    phases["training"] = time.perf_counter() - mark

    mark = time.perf_counter()
    log(f"external: evaluating on {len(test):,} test rows")
    section = params["evaluate"]
    metrics, _ = evaluate_frame(
        EnsembleScorer(result.bundle, threads),
        test,
        k=section["precision_at_k"],
        bins=section["calibration_bins"],
    )
    phases["evaluating"] = time.perf_counter() - mark

    output: dict[str, Any] = {
        "schema": args.schema,
        "data": str(args.data),
        "auprc": metrics["auprc"],
        "roc_auc": metrics["roc_auc"],
        "f1": metrics["f1"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "n_test": len(test),
        "n_test_fraud": int(test.y.sum()),
        "test_base_rate": float(test.y.mean()),
        "n_train": len(train),
        "n_train_fraud": int(train.y.sum()),
        "n_validation": len(val),
        "n_validation_fraud": int(val.y.sum()),
        "n_gap": summary["gap"]["rows"],
        "test_fraction": args.test_fraction,
        "gap_days": gap_days,
        "split": {
            "boundaries": {k: v.isoformat() for k, v in edges.items()},
            "parts": summary,
        },
        "features": features,
        "imbalance_method": result.report["classifier"]["selected"],
        "monotone_constraints": result.report["classifier"]["monotone"],
        "fusion": result.report["ensemble"]["chosen"],
        "ablation": result.report["ensemble"]["ablation"],
        "search": result.report["search"],
        "fusion_spec": result.bundle.fusion.to_dict(),
        "tiers": result.bundle.tiers.to_dict(),
        "keras_parity_max_abs": parity,
        "test": metrics,
        "train_report": result.report,
        "phase_seconds": {k: round(v, 1) for k, v in phases.items()},
    }
    if args.bundle is not None:
        output["bundle_version"] = write_bundle(result.bundle, args.bundle)
        log(f"external: bundle {output['bundle_version']} -> {args.bundle}")
    if args.mlflow:
        from training.tracking.registry import flat_metrics
        from training.tracking.search_runs import track_training

        output["mlflow_run_id"] = track_training(
            params["evaluate"]["experiment"],
            f"external-{args.schema}",
            result.report,
            result.studies,
            {"stage": "external", "schema": args.schema, "data": args.data.name},
            flat_metrics({k: metrics[k] for k in ("auprc", "roc_auc", "f1")}, "test."),
        )
    output["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2, sort_keys=True) + "\n")
    log(
        f"external: test AUPRC {output['auprc']:.4f} (base rate {output['test_base_rate']:.4f}), "
        f"ROC-AUC {output['roc_auc']:.4f}, precision {output['precision']:.3f}, "
        f"recall {output['recall']:.3f}, F1 {output['f1']:.3f} on {output['n_test']:,} rows; "
        f"{output['seconds']}s -> {args.out}"
    )


if __name__ == "__main__":
    main()
