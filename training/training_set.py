"""Stage ``training_set``: point-in-time model inputs from Feast's ``get_historical_features``.

Every transaction of v0 (train, validation, test) and v1 (the drifted period) becomes one
row with the features of the FeatureService named in ``params.yaml`` (section
``training_set``), joined as of the transaction time, plus its label, scenario and split
part. Training and serving therefore read the same feature definitions.

The offline join runs on Feast's Spark offline store (``feature_store.yaml``: local mode
here, a cluster for scale): the entity rows go to Spark by Arrow, each feature view is
joined as of the transaction time within its TTL (partition-pruned by date when the
table is a ``date=``-partitioned dataset), every row is kept, and Feast computes the
on-demand views on the result in pandas. The service never queries the offline store.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.offline_spark import repo_directory
from training.inputs.feast_store import service_features, training_store
from training.inputs.frames import LABEL
from training.inputs.params import load_params
from training.simulation.split import TimeSplit

ID_COLUMNS = ("transaction_id", "timestamp", "customer_id", "terminal_id", "amount")
META_COLUMNS = (*ID_COLUMNS, LABEL, "fraud_scenario", "period", "part")


def entity_frame(transactions: pd.DataFrame) -> pd.DataFrame:
    """Entity keys, event time and request fields, as the service sends them online."""
    ts = pd.to_datetime(transactions["timestamp"], utc=True)
    return pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"].astype(str).to_numpy(),
            "customer_id": transactions["customer_id"].astype(str).to_numpy(),
            "terminal_id": transactions["terminal_id"].astype(str).to_numpy(),
            "event_timestamp": ts.to_numpy(),
            "amount": transactions["amount"].to_numpy(dtype=np.float64),
            "tx_epoch_seconds": (ts.astype("int64") // 10**6).to_numpy(),
            "distance_from_home_km": transactions["distance_from_home_km"].to_numpy(np.float64),
            "is_foreign": transactions["is_foreign"].astype(np.int64).to_numpy(),
            "channel": transactions["channel"].astype(str).to_numpy(),
            "entry_mode": transactions["entry_mode"].astype(str).to_numpy(),
            "merchant_category": transactions["merchant_category"].astype(str).to_numpy(),
        }
    )


CHUNK_ROWS = 100_000


def historical_features(
    store: Any,
    repo: Path,
    transactions: pd.DataFrame,
    service_name: str,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Point-in-time features for every transaction, in the input's order.

    The entity rows go to Spark ``chunk_rows`` at a time, in time order: Feast collects each
    join (velocity state lists included) into the driver, so one join of a million rows
    would need gigabytes of driver heap, while a chunk's dates prune the tables' ``date=``
    partitions it reads. Each row is joined on its own, so chunking changes no value.
    """
    features = service_features(store, service_name)
    service = store.get_feature_service(service_name)
    order = np.argsort(
        pd.to_datetime(transactions["timestamp"], utc=True).to_numpy(), kind="stable"
    )
    parts = []
    with repo_directory(store, repo):
        for start in range(0, len(transactions), chunk_rows):
            chunk = transactions.iloc[order[start : start + chunk_rows]]
            parts.append(
                store.get_historical_features(
                    entity_df=entity_frame(chunk), features=service
                ).to_df()
            )
    joined = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(joined) != len(transactions):
        raise RuntimeError(f"Feast returned {len(joined)} rows for {len(transactions)}")
    # Request fields and on-demand outputs never share a name (see request_features.py).
    ids = pd.Index(transactions["transaction_id"].astype(str))
    joined = joined.set_index("transaction_id").loc[ids]
    out: pd.DataFrame = joined[features].astype(np.float64).reset_index(drop=True)
    return out


def build_training_set(
    store: Any,
    repo: Path,
    transactions: pd.DataFrame,
    service_name: str,
    split: TimeSplit,
    period: str,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Labels, identifiers, split part and features of one period's transactions."""
    meta = transactions[[c for c in META_COLUMNS if c in transactions]].reset_index(drop=True)
    meta = meta.assign(period=period, part=split.assign(meta["timestamp"]))
    features = historical_features(
        store, repo, transactions.reset_index(drop=True), service_name, chunk_rows
    )
    return pd.concat([meta, features], axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--out", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section = params["training_set"]
    service_name = section["feature_service"]
    split = TimeSplit.from_params(params)
    repo = args.repo.resolve()
    store = training_store(repo)
    features = service_features(store, service_name)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"feature_service": service_name}
    for period in ("v0", "v1"):
        if period == "v1" and not (args.data / period).is_dir():
            continue  # a retraining from the system of record (make loop) has no v1
        started = time.perf_counter()
        transactions = pd.read_parquet(args.data / period / "transactions.parquet")
        frame = build_training_set(
            store, repo, transactions, service_name, split, period, section["chunk_rows"]
        )
        frame.to_parquet(args.out / f"{period}.parquet", index=False)
        summary[period] = {
            "rows": len(frame),
            "missing_feature_values": int(frame[features].isna().sum().sum()),
        }
        print(
            f"training_set: {period} {len(frame):,} rows x {len(features)} features "
            f"in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
    summary["features"] = features
    (args.out / "features.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
