"""Stage ``poisoning``: the ensemble trained on label-poisoned data, with and without the
defense, always evaluated on the clean time-later test set.

For every poisoned variant of v0's training rows (``data/poisoned``: uniform and
hidden-fraud flips at each rate) and for the clean labels, the whole ensemble is trained
by ``training.modelling.fit.train_ensemble`` with the label-noise defense off and on. Validation
and test labels are clean (only training labels are attacked). To keep the study within
the pipeline's time budget, every run keeps the members ``train`` chose (no search), trains
on the train part and tunes the fusion, calibration and tiers on the validation part (one
window, :meth:`~training.modelling.fit.TrainConfig.for_study`), and caps the autoencoder's
epochs (``poisoning.autoencoder_max_epochs``). Each combination is an MLflow run; the table goes
to ``metrics/poisoning.json`` and ``reports/poisoning.md``, flagged rows to
``reports/flagged/<variant>.csv`` for review. Parameters: ``params.yaml`` ``poisoning``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud_model.scorer import EnsembleScorer
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling import metrics as m
from training.modelling.fit import TrainConfig, data_version, train_ensemble
from training.reporting.poisoning_table import poisoning_table
from training.reporting.reports_io import pyplot
from training.simulation.poison import variant_name

CLEAN = "clean"


def poisoned_labels(train: Frame, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The poisoned labels and the ground-truth flip mask, aligned to ``train``'s rows."""
    table = pd.read_parquet(path, columns=["transaction_id", "is_fraud", "label_flipped"])
    table = table.set_index("transaction_id").reindex(train.meta["transaction_id"])
    if table["is_fraud"].isna().any():
        raise ValueError(f"{path} does not cover every training row")
    return table["is_fraud"].to_numpy(np.int8), table["label_flipped"].to_numpy(bool)


def study_config(
    config: TrainConfig,
    section: dict[str, Any],
    train_report: dict[str, Any],
    validation_days: int,
    defense: bool,
) -> TrainConfig:
    """The training configuration of one study run."""
    study = config.for_study(train_report, validation_days)
    epochs = min(study.autoencoder.max_epochs, section["autoencoder_max_epochs"])
    return replace(
        study,
        autoencoder=replace(study.autoencoder, max_epochs=epochs),
        defense=replace(config.defense, enabled=defense),
    )


def run_one(
    name: str,
    train: Frame,
    flipped: np.ndarray,
    val: Frame,
    test: Frame,
    features: list[str],
    config: TrainConfig,
    k: int,
    threads: int,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Train on (possibly poisoned) labels, evaluate on the clean test set."""
    started = time.perf_counter()
    result = train_ensemble(
        Frame.concat([train, val]),
        features,
        config,
        threads,
        metadata={"labels": name},
        log=lambda _: None,
    )
    batch = EnsembleScorer(result.bundle, threads).score(test.x)
    row: dict[str, Any] = {
        "auprc": m.ranking(test.y, batch.probability)["auprc"],
        "recall_at_budget": m.recall_at_budget(test.y, batch.probability, test.days, k),
        **{
            f"{key}_at_alert_tier": value
            for key, value in m.at_threshold(test.y, batch.level_index >= 1).items()
            if key != "alerts"
        },
        "flipped_labels": int(flipped.sum()),
    }
    flagged_frame = result.flagged
    if flagged_frame is not None:
        flagged_mask = train.meta["transaction_id"].isin(flagged_frame["transaction_id"])
        flagged = flagged_mask.to_numpy()
        row["flagged"] = int(flagged.sum())
        row["flagged_precision"] = float(flipped[flagged].mean()) if flagged.any() else 0.0
        row["flagged_recall"] = float(flagged[flipped].mean()) if flipped.any() else 0.0
        flagged_frame = flagged_frame.assign(label_was_flipped=flipped[flagged])
    row["seconds"] = round(time.perf_counter() - started, 1)
    return m.rounded(row, 4), flagged_frame


def plot(rows: list[dict[str, Any]], path: Path, k: int) -> None:
    """AUPRC and recall at the daily alert budget against the share of flipped labels, one
    line per flip model and defense setting."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in (
        (axes[0], "auprc", "AUPRC"),
        (axes[1], "recall_at_budget", f"recall at {k} alerts/day"),
    ):
        for model in ("uniform", "hidden_fraud"):
            for defense, style in ((False, "-"), (True, "--")):
                points = [
                    (0.0, r[key]) for r in rows if r["labels"] == CLEAN and r["defense"] == defense
                ]
                points += [
                    (r["rate"], r[key])
                    for r in rows
                    if r.get("flip_model") == model and r["defense"] == defense
                ]
                if len(points) > 1:
                    xs, ys = zip(*sorted(points), strict=True)
                    ax.plot(
                        [100 * x for x in xs],
                        ys,
                        style,
                        marker="o",
                        label=f"{model}, defense {'on' if defense else 'off'}",
                    )
        ax.set_xlabel("flipped training labels (%)")
        ax.set_ylabel(f"{label}, clean v0 test set")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Label poisoning: trained on flipped labels, evaluated on clean time-later data")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--train-report", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/poisoning.json"))
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section = params["poisoning"]
    config = TrainConfig.from_params(params["train"])
    train_report = json.loads(args.train_report.read_text())
    imbalance = train_report["classifier"]["selected"]
    k = params["evaluate"]["precision_at_k"]
    threads = available_cores()
    features, parts = load_parts(args.training_set, "v0", ("train", "validation", "test"))
    train, val, test = parts["train"], parts["validation"], parts["test"]

    variants: list[tuple[str, str | None, float, Path | None]] = [(CLEAN, None, 0.0, None)]
    for model in params["poison"]["flip_models"]:
        for rate in params["poison"]["rates"]:
            name = variant_name(model, rate)
            variants.append((name, model, rate, args.data / "poisoned" / f"{name}.parquet"))
    defenses = (False, True) if section["compare_defense"] else (config.defense.enabled,)

    mlflow = None
    if not args.no_mlflow:
        from training.tracking import registry

        mlflow = registry.configure(params["evaluate"]["experiment"])
    rows: list[dict[str, Any]] = []
    (args.reports / "flagged").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    total = len(variants) * len(defenses)
    for name, model, rate, path in variants:
        if path is None:
            labelled, flipped = train, np.zeros(len(train), dtype=bool)
        else:
            y, flipped = poisoned_labels(train, path)
            labelled = train.with_labels(y)
        for defense in defenses:
            run_config = study_config(
                config, section, train_report, params["split"]["val_days"], defense
            )
            row, flagged = run_one(
                name, labelled, flipped, val, test, features, run_config, k, threads
            )
            row = {"labels": name, "flip_model": model, "rate": rate, "defense": defense, **row}
            rows.append(row)
            if flagged is not None:
                flagged.to_csv(args.reports / "flagged" / f"{name}.csv", index=False)
            if mlflow is not None:
                with mlflow.start_run(run_name=f"poisoning-{name}-defense-{defense}"):
                    mlflow.set_tags({"study": "poisoning"})
                    mlflow.log_params(
                        {
                            "data_version": data_version(),
                            "poisoning": name,
                            "flip_model": model or "none",
                            "flip_rate": rate,
                            "defense": defense,
                            "imbalance_method": imbalance,
                        }
                    )
                    mlflow.log_metrics(
                        {
                            key: float(value)
                            for key, value in row.items()
                            if isinstance(value, int | float) and not isinstance(value, bool)
                        }
                    )
            print(
                f"poisoning [{len(rows)}/{total}] {name} defense={'on' if defense else 'off'}:"
                f" AUPRC {row['auprc']:.4f}, recall@{k} {row['recall_at_budget']:.3f}"
                + (
                    f", flagged {row['flagged']:,} (precision {row['flagged_precision']:.2f})"
                    if "flagged" in row
                    else ""
                )
                + f" [{row['seconds']}s]",
                flush=True,
            )

    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(
        json.dumps(
            {f"{r['labels']}/defense_{'on' if r['defense'] else 'off'}": r for r in rows},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    (args.reports / "poisoning.md").write_text(poisoning_table(rows, k))
    plot(rows, args.reports / "poisoning.png", k)
    print(f"poisoning: {len(rows)} runs in {time.perf_counter() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
