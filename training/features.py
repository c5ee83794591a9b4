"""Stage ``features``: the Feast offline sources, computed by the Spark feature job.

Reads the transactions (the DVC data set ``data/v*/transactions.parquet``, or with
``--transactions`` the system of record's export ``<dir>/transactions/date=*/``) and the
terminals' coordinates, and writes four date-partitioned Parquet datasets into ``--out``
(:mod:`training.featurejob`): the daily customer and terminal snapshots (point-in-time
correct, with the label delay), the terminal locations, and the velocity state after every
transaction, computed by ``feature_repo.velocity``, the code the service runs online.

Stage ``features`` of ``dvc.yaml``; parameters in ``params.yaml`` section ``features``
(``features.spark``: master, shuffle partitions, driver memory).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from training.featurejob.io import read_dvc_data, read_export
from training.featurejob.job import run_feature_job
from training.featurejob.session import SparkConfig, spark_in_use
from training.inputs.feature_tables import FeatureConfig
from training.inputs.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, default=Path("data"), help="DVC dataset directory")
    source.add_argument(
        "--transactions", type=Path, help="system of record export (holds transactions/)"
    )
    parser.add_argument(
        "--terminals", type=Path, help="terminal coordinates (default: DATA/terminals.parquet)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("feature_repo/data"), help="where the tables go"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--master", help="Spark master (overrides features.spark.master)")
    args = parser.parse_args(argv)

    params = load_params(args.params)["features"]
    config = FeatureConfig.from_params(params)
    spark_config = SparkConfig.from_params(params)
    if args.master:
        spark_config = dataclasses.replace(spark_config, master=args.master)
    terminals = pd.read_parquet(args.terminals or args.data / "terminals.parquet")
    started = time.perf_counter()
    with spark_in_use(spark_config) as spark:
        if args.transactions is not None:
            transactions = read_export(spark, args.transactions)
        else:
            transactions = read_dvc_data(spark, args.data)
        run_feature_job(transactions, terminals, config, args.out)
    print(f"features: done in {time.perf_counter() - started:.1f}s -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
