"""Stage ``train``: the autoencoder + LightGBM ensemble, calibrated, with cost-based tiers.

On v0's training time (its train and validation parts), searches both members'
hyperparameters on prequential time folds and chooses the fusion, calibration and tiers on
their out-of-fold windows, then refits on all of it
(:func:`training.modelling.fit.train_ensemble`), checks the NumPy autoencoder against
Keras, and exports the TensorFlow-free model bundle the service loads. The test part is
never read here. Unless ``--no-mlflow``, one MLflow run ``train-<bundle version>`` holds
the choices and every search trial as a child run; its id goes into ``metrics/train.json``
for ``evaluate`` to resume. Parameters in ``params.yaml`` section ``train``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

from fraud_model.bundle import write_bundle
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling.fit import (
    TrainConfig,
    TrainResult,
    data_version,
    keras_parity,
    train_ensemble,
)

PARITY_TOLERANCE = 1e-5


def save_result(
    result: TrainResult,
    bundle_dir: Path,
    report_path: Path,
    parity: float,
    track_run: Callable[[str], str] | None = None,
) -> str:
    """Write the bundle (replacing an old one), track the run when asked (its id goes into
    the report as ``mlflow_run_id``), then write the report."""
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    version = write_bundle(result.bundle, bundle_dir)
    report = {**result.report, "bundle_version": version, "keras_parity_max_abs": parity}
    if track_run is not None:
        report["mlflow_run_id"] = track_run(version)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return version


def track(result: TrainResult, version: str, experiment: str) -> str:
    """One MLflow run for this training: its choices, and every search trial as a child run
    (``evaluate`` resumes it to add the test metrics and the registered version)."""
    from training.tracking.search_runs import track_training

    tags = {"bundle_version": version, "stage": "train"}
    return track_training(experiment, f"train-{version}", result.report, result.studies, tags)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--report", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--flagged", type=Path, default=Path("artifacts/flagged_labels.csv"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow run")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = TrainConfig.from_params(params["train"])
    features, parts = load_parts(args.training_set, "v0", ("train", "validation"))
    dev = Frame.concat([parts["train"], parts["validation"]])
    print(f"train: {len(dev):,} rows of training time, {available_cores()} cores", flush=True)
    metadata = {
        "feature_service": params["training_set"]["feature_service"],
        "data_version": data_version(),
        "labels": "clean",
    }
    result = train_ensemble(
        dev,
        features,
        config,
        metadata=metadata,
        log=lambda m: print(m, flush=True),
    )
    parity = keras_parity(result, parts["validation"])
    if parity > PARITY_TOLERANCE:
        raise SystemExit(f"train: NumPy autoencoder differs from Keras by {parity:.2e}")
    experiment = params["evaluate"]["experiment"]
    track_run = None if args.no_mlflow else partial(track, result, experiment=experiment)
    version = save_result(result, args.bundle, args.report, parity, track_run)
    if result.flagged is not None:
        args.flagged.parent.mkdir(parents=True, exist_ok=True)
        result.flagged.to_csv(args.flagged, index=False)
    print(
        f"train: bundle {version} -> {args.bundle} (Keras parity {parity:.1e}); "
        f"{result.report['seconds']}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
