"""Stage ``train``: the autoencoder + LightGBM ensemble, calibrated, with cost-based tiers.

Fits on the time-ordered train part of v0, tunes everything (early stopping, imbalance
strategy, fusion weight, calibration, tiers) on the validation part
(:func:`training.modelling.fit.train_ensemble`), checks the NumPy autoencoder against
Keras, and exports the TensorFlow-free model bundle the service loads. The test part is
never read here. Parameters in ``params.yaml`` section ``train``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from fraud_model.bundle import write_bundle
from training.inputs.frames import available_cores, load_parts
from training.inputs.params import load_params
from training.modelling.fit import (
    TrainConfig,
    TrainResult,
    data_version,
    keras_parity,
    train_ensemble,
)

PARITY_TOLERANCE = 1e-5


def save_result(result: TrainResult, bundle_dir: Path, report_path: Path, parity: float) -> str:
    """Write the bundle (replacing an old one), the report, and any flagged labels."""
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    version = write_bundle(result.bundle, bundle_dir)
    report = {**result.report, "bundle_version": version, "keras_parity_max_abs": parity}
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return version


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--report", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--flagged", type=Path, default=Path("artifacts/flagged_labels.csv"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = TrainConfig.from_params(params["train"])
    features, parts = load_parts(args.training_set, "v0", ("train", "validation"))
    print(
        f"train: {len(parts['train']):,} training and {len(parts['validation']):,} validation "
        f"rows, {available_cores()} cores",
        flush=True,
    )
    metadata = {
        "feature_service": params["training_set"]["feature_service"],
        "data_version": data_version(),
        "labels": "clean",
    }
    result = train_ensemble(
        parts["train"],
        parts["validation"],
        features,
        config,
        metadata=metadata,
        log=lambda m: print(m, flush=True),
    )
    parity = keras_parity(result, parts["validation"])
    if parity > PARITY_TOLERANCE:
        raise SystemExit(f"train: NumPy autoencoder differs from Keras by {parity:.2e}")
    version = save_result(result, args.bundle, args.report, parity)
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
