"""The retraining's data set from the system of record's export.

The weekly retraining (``tools/retrain.sh`` with ``RECORD_URL``) and ``make loop`` train on
what production saw: the export of the system of record (``python -m system_of_record
export``), with labels as of a time (a label on record, or legitimate once the label
delay has passed without a chargeback: :func:`system_of_record.export.mature_labels`),
cut where every label is known. It is written as the v0 period of a data directory the
stages read (``DATA/v0/transactions.parquet`` and the terminals' reference table), and a
parameter file whose ``simulate.start_date`` and ``split`` fit its days: the last
``test_days`` are the gate's test set, the ``val_days`` before them validation, the rest
training after the burn-in (the features' warm-up).

    python -m training.inputs.record_history --export EXPORT --terminals terminals.parquet \\
        --out DATA --params params.yaml --params-out params.retrain.yaml [--as-of ISO]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from system_of_record.export import mature_labels
from training.inputs.params import load_params


def retraining_data(
    export: Path,
    terminals: Path,
    out: Path,
    params: dict[str, Any],
    as_of: pd.Timestamp | None = None,
    val_days: int = 7,
    test_days: int = 7,
) -> dict[str, Any]:
    """Write ``out`` (v0 + terminals) from ``export``; returns ``params`` fitted to it."""
    frame = pd.read_parquet(export / "transactions")
    frame = frame.drop(columns=["date"], errors="ignore")
    as_of = as_of or frame["timestamp"].max().ceil("D")
    delay = pd.Timedelta(days=params["features"]["label_delay_days"])
    known_until = (as_of - delay).floor("D")  # every label of earlier days is known
    rows = mature_labels(frame, as_of, delay)
    rows = rows[rows["timestamp"] < known_until].drop(columns=["label_received_at"])
    rows = rows.sort_values("timestamp", kind="stable")
    rows["fraud_scenario"] = "unknown"  # production knows frauds, not the simulator's scenario
    start = rows["timestamp"].min().floor("D")
    days = (known_until - start).days
    burn_in = params["split"]["burn_in_days"]
    train_days = days - burn_in - val_days - test_days
    if train_days < 7:
        raise ValueError(f"{days} days of matured history: too few to retrain (need 7 of training)")
    (out / "v0").mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out / "v0" / "transactions.parquet", index=False)
    shutil.copy2(terminals, out / "terminals.parquet")
    fitted = {
        **params,
        "simulate": {**params["simulate"], "start_date": start.strftime("%Y-%m-%d")},
    }
    fitted["split"] = {
        "burn_in_days": burn_in, "train_days": train_days, "val_days": val_days,
        "gap_days": 0, "test_days": test_days,
    }  # fmt: skip
    fitted["record_history"] = {
        "as_of": as_of.isoformat(), "rows": len(rows), "frauds": int(rows["is_fraud"].sum()),
        "first_day": start.date().isoformat(), "days": days,
    }  # fmt: skip
    return fitted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="holds transactions/")
    parser.add_argument("--terminals", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the data directory to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--params-out", type=Path, required=True)
    parser.add_argument("--val-days", type=int, default=7, help="validation days")
    parser.add_argument("--test-days", type=int, default=7, help="the gate's test days")
    parser.add_argument(
        "--as-of", type=pd.Timestamp, help="labels known then (default: the export's end)"
    )
    args = parser.parse_args(argv)
    as_of = (
        None
        if args.as_of is None
        else args.as_of.tz_localize("UTC")
        if args.as_of.tz is None
        else args.as_of
    )
    fitted = retraining_data(
        args.export, args.terminals, args.out, load_params(args.params), as_of,
        args.val_days, args.test_days,
    )  # fmt: skip
    facts = fitted.pop("record_history")
    args.params_out.write_text(yaml.safe_dump(fitted, sort_keys=False))
    print(f"record_history: {facts} -> {args.out}, split {fitted['split']} -> {args.params_out}")


if __name__ == "__main__":
    main()
