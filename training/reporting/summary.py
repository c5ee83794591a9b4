"""The summary ``make demo`` ends with: datasets, an online lookup, and the model scoring it.

``python -m training.reporting.summary`` (also the last step of ``tools/retrain.sh``). Not a
pipeline stage: it reads ``data/``, the online store and the bundle, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from feature_repo.feast_runtime import import_feast
from feature_repo.online_request import online_request
from training.inputs.params import load_params
from training.simulation.datasets import read_manifest
from training.simulation.split import PARTS


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dataset_section(manifest: dict[str, Any]) -> str:
    rows = [("dataset", "rows", "fraud", "fraud rate", "from", "to")]
    for name, p in manifest["periods"].items():
        rows.append(
            (
                name,
                f"{p['rows']:,}",
                f"{p['fraud']:,}",
                f"{p['fraud_rate']:.3%}",
                p["start"][:10],
                p["end"][:10],
            )
        )
    for part in PARTS:
        s = manifest["split"][part]
        rate = s["fraud"] / s["rows"] if s["rows"] else 0.0
        rows.append(
            (
                f"  v0 {part}",
                f"{s['rows']:,}",
                f"{s['fraud']:,}",
                f"{rate:.3%}",
                s["start"][:10],
                s["end"][:10],
            )
        )
    for name, p in manifest["poisoned"].items():
        rows.append(
            (name, f"{p['rows']:,}", f"{p['flipped']:,} flipped", f"{p['fraud_rate']:.3%}", "", "")
        )
    scenarios = {
        s: sum(p["scenarios"][s] for p in manifest["periods"].values() if s in p["scenarios"])
        for s in {k for p in manifest["periods"].values() for k in p["scenarios"]}
    }
    listing = ", ".join(f"{s} {n:,}" for s, n in sorted(scenarios.items()))
    return _table(rows) + f"\n\nfraud by scenario (v0 + v1): {listing}"


def lookup_section(repo: Path, data_dir: Path, service: str) -> tuple[str, dict[str, Any]]:
    """Look up the newest transaction's customer and terminal in the online store."""
    last = pd.read_parquet(data_dir / "v1/transactions.parquet").iloc[-1]
    feast = import_feast()
    store = feast.FeatureStore(repo_path=str(repo))
    request = online_request(last)
    features = store.get_feature_service(service)
    store.get_online_features(features=features, entity_rows=[request])  # warm caches
    started = time.perf_counter()
    values = store.get_online_features(features=features, entity_rows=[request]).to_dict()
    elapsed_ms = (time.perf_counter() - started) * 1000
    shown = [
        (k, f"{v[0]:.4g}" if isinstance(v[0], float) else str(v[0])) for k, v in values.items()
    ]
    header = (
        f"online lookup via {service} for customer {last.customer_id}, terminal "
        f"{last.terminal_id}, amount {last.amount:.2f} ({elapsed_ms:.1f} ms, SQLite online store)"
    )
    return header + "\n" + _table([("feature", "value"), *shown]), values


def model_section(bundle_dir: Path, metrics_path: Path, online: dict[str, Any]) -> str:
    """The bundle's test-set metrics, and the online-looked-up transaction scored by it."""
    import numpy as np

    from fraud_model.bundle import BundleError, load_bundle
    from fraud_model.scorer import EnsembleScorer

    try:
        bundle = load_bundle(bundle_dir)
    except BundleError as exc:
        return f"no model bundle ({exc}): run `make train`"
    lines = [f"bundle {bundle.version} in {bundle_dir}, tiers {bundle.tiers.to_dict()}"]
    if metrics_path.is_file():
        test = json.loads(metrics_path.read_text())["test"]
        lines.append(
            f"time-later test set: AUPRC {test['auprc']:.4f}, ROC-AUC {test['roc_auc']:.4f}, "
            f"precision {test['precision']:.3f} / recall {test['recall']:.3f} at the alert tier, "
            f"card precision@{test['k']} {test['card_precision_at_k']:.3f}, "
            f"cost saving {test['cost_saving']:.1%}, ECE {test['ece']:.4f}"
        )
    scorer = EnsembleScorer(bundle)
    raw = np.array(
        [[np.nan if online[f][0] is None else online[f][0] for f in bundle.features]],
        dtype=np.float64,
    )
    batch = scorer.score(raw)
    reasons = (
        ", ".join(f"{r.code} ({r.source} {r.contribution:+.3f})" for r in scorer.reasons(batch)[0])
        or "none"
    )
    lines.append(
        f"that transaction: fraud_probability {batch.probability[0]:.4f}, "
        f"{batch.risk_levels[0]} -> {batch.decisions[0]}; reasons: {reasons}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--feature-service", help="default: the training set's (params.yaml)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/evaluate.json"))
    args = parser.parse_args(argv)
    service = args.feature_service or load_params(args.params)["training_set"]["feature_service"]
    manifest = read_manifest(args.data)
    if manifest is None:
        raise SystemExit("summary: no data/manifest.json: run `make data`")
    print("\n== Datasets (data/, tracked by data.dvc) ==\n" + dataset_section(manifest))
    lookup, values = lookup_section(args.repo, args.data, service)
    print("\n== Feast ==\n" + lookup)
    print("\n== Model ==\n" + model_section(args.bundle, args.metrics, values))


if __name__ == "__main__":
    main()
