"""Stage ``data``: the versioned datasets: check them and record their figures; build them.

``python -m training.data`` (the ``dvc.yaml`` stage) runs the check below.
``python -m training.data sync`` (``make data``) keeps ``data/`` when it matches
``params.yaml`` and the generator code, else pulls it from the DVC remote, else simulates it
and runs ``dvc add data`` and ``dvc push``; ``python -m training.data build`` always
simulates. The generation code is :mod:`training.simulation.datasets`.

The check fails (non-zero exit) when ``data/`` is stale for ``params.yaml``, a file was
modified, or an expectation breaks: schema, unique ids, id and amount formats the API
accepts, periods in order, fraud rate within 0.2 percentage points of the target, every
scenario present, poisoned variants with exact flip counts on training rows only. Writes
``metrics/data.json`` (declared as DVC metrics) for ``dvc metrics diff``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inputs.params import load_params
from training.simulation.datasets import build, is_current, read_manifest, sync
from training.simulation.poison import flip_count
from training.simulation.simulate import SCENARIOS, V0_SCENARIOS
from training.simulation.split import TimeSplit

TRANSACTION_COLUMNS = {
    "transaction_id": "object",
    "timestamp": "datetime64[us, UTC]",
    "customer_id": "object",
    "terminal_id": "object",
    "amount": "float64",
    "merchant_category": "object",
    "channel": "object",
    "entry_mode": "object",
    "is_foreign": "bool",
    "distance_from_home_km": "float64",
    "is_fraud": "int8",
    "fraud_scenario": "object",
}
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
FRAUD_RATE_TOLERANCE = 0.002


def check_transactions(frame: pd.DataFrame, name: str, target_rate: float) -> list[str]:
    """Expectations every transaction table meets; returns the broken ones."""
    problems = []
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    if dtypes != TRANSACTION_COLUMNS:
        problems.append(f"{name}: columns/dtypes {dtypes} != {TRANSACTION_COLUMNS}")
        return problems
    if frame.isna().any().any():
        problems.append(f"{name}: null values")
    if not frame["transaction_id"].is_unique:
        problems.append(f"{name}: duplicate transaction ids")
    if not frame["timestamp"].is_monotonic_increasing:
        problems.append(f"{name}: not sorted by time")
    for column in ("transaction_id", "customer_id", "terminal_id"):
        if not frame[column].str.fullmatch(ID_PATTERN).all():
            problems.append(f"{name}: {column} outside the API's id format")
    if not ((frame["amount"] > 0) & (frame["amount"] <= 1_000_000)).all():
        problems.append(f"{name}: amount outside (0, 1,000,000]")
    if not frame["is_fraud"].eq(frame["fraud_scenario"].ne("none").astype(np.int8)).all():
        problems.append(f"{name}: is_fraud disagrees with fraud_scenario")
    rate = float(frame["is_fraud"].mean())
    if abs(rate - target_rate) > FRAUD_RATE_TOLERANCE:
        problems.append(f"{name}: fraud rate {rate:.4f} not within 0.2 pp of {target_rate}")
    return problems


def check_datasets(data_dir: Path, params: dict[str, Any]) -> list[str]:
    """Every expectation on ``data_dir``; an empty list means the data is good."""
    current, why = is_current(data_dir, params)
    if not current:
        return [f"data/ is not current ({why}): run `make data`"]
    manifest = read_manifest(data_dir)
    assert manifest is not None
    target = params["simulate"]["fraud_rate"]
    v0 = pd.read_parquet(data_dir / "v0/transactions.parquet")
    v1 = pd.read_parquet(data_dir / "v1/transactions.parquet")
    problems = check_transactions(v0, "v0", target)
    if len(v1):
        problems += check_transactions(v1, "v1", target)
        if v0["timestamp"].max() >= v1["timestamp"].min():
            problems.append("v0 and v1 overlap in time")
        if not set(v0["transaction_id"]).isdisjoint(v1["transaction_id"]):
            problems.append("v0 and v1 share transaction ids")
    for name, frame, expected in (("v0", v0, V0_SCENARIOS), ("v1", v1, SCENARIOS[1:])):
        if len(frame):
            missing = set(expected) - set(frame["fraud_scenario"])
            if missing:
                problems.append(f"{name}: scenarios missing: {sorted(missing)}")
    if "card_testing" in set(v0["fraud_scenario"]):
        problems.append("v0 contains v1's new card-testing pattern")

    train = v0[TimeSplit.from_params(params).assign(v0["timestamp"]) == "train"]
    for name, meta in manifest["poisoned"].items():
        variant = pd.read_parquet(data_dir / f"poisoned/{name}.parquet")
        if not variant["transaction_id"].equals(train["transaction_id"].reset_index(drop=True)):
            problems.append(f"{name}: rows are not exactly v0's training rows")
            continue
        flipped = variant["label_flipped"].to_numpy()
        clean = train["is_fraud"].to_numpy()
        expected_flips = flip_count(clean, meta["rate"], meta["flip_model"])
        if int(flipped.sum()) != expected_flips:
            problems.append(f"{name}: {int(flipped.sum())} flips, expected {expected_flips}")
        if not np.array_equal(variant["is_fraud"].to_numpy() != clean, flipped):
            problems.append(f"{name}: label_flipped does not match the changed labels")
    return problems


def data_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """The figures worth diffing between data versions."""
    metrics: dict[str, Any] = {}
    for name, period in manifest["periods"].items():
        metrics[name] = {
            "rows": period["rows"],
            "fraud_rate": period["fraud_rate"],
            "customers": period["customers"],
            "terminals": period["terminals"],
            **{f"fraud_{s}": n for s, n in period["scenarios"].items()},
        }
    metrics["split"] = {
        part: {
            "rows": s["rows"],
            "fraud_rate": round(s["fraud"] / s["rows"], 6) if s["rows"] else 0.0,
        }
        for part, s in manifest["split"].items()
    }
    metrics["poisoned"] = {
        name: {"flipped": p["flipped"], "fraud_rate": p["fraud_rate"]}
        for name, p in manifest["poisoned"].items()
    }
    return metrics


def check(data_dir: Path, params: dict[str, Any], metrics_path: Path) -> None:
    """The stage: every expectation on ``data_dir``, then ``metrics_path``."""
    problems = check_datasets(data_dir, params)
    if problems:
        raise SystemExit("data: checks failed:\n  " + "\n  ".join(problems))
    manifest = read_manifest(data_dir)
    assert manifest is not None
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(data_metrics(manifest), indent=2, sort_keys=True) + "\n")
    periods = {k: v["rows"] for k, v in manifest["periods"].items()}
    print(f"data: all checks passed {periods} -> {metrics_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Check, sync or build the versioned datasets.")
    parser.add_argument(
        "command",
        nargs="?",
        default="check",
        choices=("check", "sync", "build"),
        help="check (the dvc stage, default): expectations and metrics/data.json; "
        "sync (make data): keep, pull or simulate data/ and track it; build: always simulate",
    )
    parser.add_argument("--data", type=Path, default=Path("data"), help="dataset directory")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/data.json"))
    parser.add_argument("--no-push", action="store_true", help="sync: skip `dvc push`")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    if args.command == "check":
        check(args.data, params, args.metrics)
    elif args.command == "build":
        manifest = build(params, args.data)
        rows = {k: v["rows"] for k, v in manifest["periods"].items()}
        print(f"data: built {rows} in {args.data}")
    else:
        print(sync(params, args.data, push=not args.no_push))


if __name__ == "__main__":
    main()
