"""Stage ``evaluate``: the bundle, scored by the service's scorer, on the time-later test set.

Reports on v0's test part (after the label-delay gap) and, as a drift check, on the whole
of v1. Writes ``metrics/evaluate.json`` and PR, ROC and calibration curves for
``dvc plots`` and an ``ablation`` (the kept model against each member alone), then tracks
the run in MLflow, resuming ``train``'s run of this bundle (``mlflow_run_id`` in
``metrics/train.json``) when the store knows it: logs parameters, metrics, plots and the
bundle, registers it as a new ``fraud-ensemble`` version (alias ``challenger``) and
applies the promotion gate on the same test set: ``evaluate.promotion: immediate`` moves
``champion`` when it passes, ``after_shadow`` leaves the verdict as tags on the version for
``training.promote``. Parameters: ``params.yaml`` ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fraud_model.bundle import ModelBundle, load_bundle
from fraud_model.scorer import EnsembleScorer, ScoreBatch
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling import metrics as m
from training.modelling.evaluation import evaluate_frame


def write_plots(curves: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("pr", "roc", "calibration"):
        (directory / f"{name}.json").write_text(json.dumps(curves[name], indent=1) + "\n")


def ablation(y: np.ndarray, batch: ScoreBatch) -> dict[str, Any]:
    """AUPRC and ROC-AUC of the kept model (its served probability), of the classifier
    member alone (its margin) and of the autoencoder alone, and the kept model's gain."""
    kept = m.ranking(y, batch.probability)
    classifier = m.ranking(y, batch.clf_margin)
    return m.rounded(
        {
            "kept": kept,
            "classifier_only": classifier,
            "autoencoder_only": m.ranking(y, batch.ae_score),
            "gain_over_classifier": {k: kept[k] - classifier[k] for k in kept},
        }
    )


def train_run(mlflow: Any, train_report: Path, bundle_version: str) -> str | None:
    """The id of the ``train`` run of this bundle when the tracking store knows it."""
    if not train_report.is_file():
        return None
    run_id = json.loads(train_report.read_text()).get("mlflow_run_id")
    if not run_id:
        return None
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return None
    # A run of another bundle (metrics/train.json left from an older train) is not resumed.
    return str(run_id) if run.data.tags.get("bundle_version") == bundle_version else None


def track(
    bundle_dir: Path,
    bundle: ModelBundle,
    test: Frame,
    results: dict[str, Any],
    params: dict[str, Any],
    plots_dir: Path,
    features: list[str],
    train_report: Path | None = None,
) -> dict[str, Any]:
    """Log to MLflow (resuming ``train``'s run of this bundle when there is one), register
    the bundle, and apply the promotion gate."""
    import pandas as pd

    from training.tracking import registry

    section = params["evaluate"]
    mlflow = registry.configure(section["experiment"])
    model_name = section["model_name"]
    resumed = train_run(mlflow, train_report, bundle.version) if train_report else None
    name = None if resumed else f"ensemble-{bundle.version}"
    with mlflow.start_run(run_id=resumed, run_name=name) as run:
        mlflow.set_tags(
            {
                "bundle_version": bundle.version,
                "labels": bundle.metadata.get("labels", "clean"),
                "defense": str(bundle.metadata.get("defense", False)),
            }
        )
        mlflow.log_params(
            {
                "data_version": bundle.metadata.get("data_version"),
                "feature_service": bundle.metadata.get("feature_service"),
                "poisoning": bundle.metadata.get("labels", "clean"),
                "defense": bundle.metadata.get("defense", False),
                "imbalance_method": bundle.metadata.get("imbalance_method"),
                "fusion": bundle.fusion.method,
                "calibration": bundle.calibrator.method,
                **{f"tier_{k}": v for k, v in bundle.tiers.to_dict().items()},
                **registry.flat_metrics(params["train"]["classifier"], "clf."),
                **registry.flat_metrics(params["train"]["autoencoder"], "ae."),
            }
        )
        mlflow.log_metrics(registry.flat_metrics(results))
        mlflow.log_metrics(registry.flat_metrics(bundle.metadata.get("validation", {}), "val."))
        for plot in sorted(plots_dir.glob("*.json")):
            mlflow.log_artifact(str(plot), artifact_path="plots")
        example = pd.DataFrame(test.x[:5], columns=list(bundle.features))
        version = registry.log_model_version(mlflow, bundle_dir, model_name, example)
        champion = registry.alias_version(mlflow, model_name, registry.CHAMPION)
        champion_auprc = None
        if champion is not None and champion != version:
            old = EnsembleScorer(
                load_bundle(registry.download_bundle(mlflow, model_name, champion))
            )
            # The champion may read another FeatureService (v1 before v2): its own
            # columns, by name. One the training set cannot feed is not compared.
            if set(old.features) <= set(features):
                columns = [features.index(name) for name in old.features]
                champion_auprc = m.ranking(test.y, old.score(test.x[:, columns]).probability)[
                    "auprc"
                ]
        # The challenger's test AUPRC is the one just measured: no second scoring pass.
        gate = registry.apply_gate(
            mlflow,
            model_name,
            version,
            results["test"]["auprc"],
            champion_auprc,
            section["gate_tolerance"],
            section.get("promotion", "immediate"),
            bundle.version,
        )
        mlflow.set_tag("promotion_gate", gate.reason)
        return {
            "run_id": run.info.run_id,
            "resumed_train_run": resumed is not None,
            "model_name": model_name,
            "version": version,
            "bundle_version": bundle.version,
            "champion_before": gate.champion_before,
            "promoted": gate.promoted,
            "gate_passed": gate.passed,
            "promotion": section.get("promotion", "immediate"),
            "reason": gate.reason,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/evaluate.json"))
    parser.add_argument("--plots", type=Path, default=Path("plots"))
    parser.add_argument("--gate", type=Path, default=Path("metrics/gate.json"))
    parser.add_argument("--train-report", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--no-mlflow", action="store_true", help="skip tracking and registry")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section = params["evaluate"]
    started = time.perf_counter()
    bundle = load_bundle(args.bundle)
    scorer = EnsembleScorer(bundle, available_cores())
    features, v0 = load_parts(args.training_set, "v0", ("test",))
    k, bins = section["precision_at_k"], section["calibration_bins"]
    test_batch = scorer.score(v0["test"].x)
    test, curves = evaluate_frame(scorer, v0["test"], k, bins, test_batch)
    results: dict[str, Any] = {
        "bundle_version": bundle.version,
        "test": test,
        "ablation": {"test": ablation(v0["test"].y, test_batch)},
    }
    # A retraining from the system of record has no drifted period (make loop): v0 only.
    if (args.training_set / "v1.parquet").is_file():
        _, v1 = load_parts(args.training_set, "v1", ("after",))
        drifted_batch = scorer.score(v1["after"].x)
        drifted, _ = evaluate_frame(scorer, v1["after"], k, bins, drifted_batch)
        results["drifted_v1"] = drifted
        results["ablation"]["drifted_v1"] = ablation(v1["after"].y, drifted_batch)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_plots(curves, args.plots)
    print(
        f"evaluate: test AUPRC {test['auprc']:.4f}, ROC-AUC {test['roc_auc']:.4f}, "
        f"precision {test['precision']:.3f} / recall {test['recall']:.3f} at the alert tier, "
        f"card precision@{test['k']} {test['card_precision_at_k']:.3f}, "
        f"ECE {test['ece']:.4f} (uncalibrated {test['ece_uncalibrated']:.4f})"
        + (f"; v1 AUPRC {results['drifted_v1']['auprc']:.4f}" if "drifted_v1" in results else ""),
        flush=True,
    )
    if not args.no_mlflow:
        gate = track(
            args.bundle,
            bundle,
            v0["test"],
            results,
            params,
            args.plots,
            features,
            args.train_report,
        )
        args.gate.write_text(json.dumps(gate, indent=2) + "\n")
        print(f"evaluate: registered {gate['model_name']} v{gate['version']}: {gate['reason']}")
    print(f"evaluate: {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
