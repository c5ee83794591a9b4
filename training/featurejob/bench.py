"""Time the feature job on the DVC data set replicated ``--replicas`` times.

``python -m training.featurejob.bench --data data --replicas 10 --work /tmp/featurebench
--master 'local[2]'`` writes the stream ``replicas`` times (customer, terminal and
transaction ids suffixed ``-r<k>``, so each copy is a disjoint population on the same
days) into ``WORK/export`` in the system of record's export layout, then runs the
``features`` stage on it into ``WORK/out`` and prints rows and seconds per table.
Run it under ``/usr/bin/time -v`` for the peak memory.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.featurejob.io import COLUMNS
from training.features import main as features_main


def replicate(data: Path, replicas: int, work: Path) -> tuple[Path, Path, int]:
    """The export directory, the terminals file and the number of rows written."""
    export = work / "export"
    shutil.rmtree(export, ignore_errors=True)
    periods = sorted(data.glob("v*/transactions.parquet"))
    stream = pd.concat([pd.read_parquet(p, columns=list(COLUMNS)) for p in periods])
    stream["date"] = stream["timestamp"].dt.strftime("%Y-%m-%d")
    terminals = pd.read_parquet(data / "terminals.parquet", columns=["terminal_id", "x_km", "y_km"])
    copies = []
    for k in range(replicas):
        suffix = f"-r{k}"
        copy = stream.copy()
        for column in ("transaction_id", "customer_id", "terminal_id"):
            copy[column] = copy[column].astype(str) + suffix
        pq.write_to_dataset(
            pa.Table.from_pandas(copy, preserve_index=False),
            export / "transactions",
            partition_cols=["date"],
            basename_template=f"part-{k}-{{i}}.parquet",
        )
        copies.append(terminals.assign(terminal_id=terminals["terminal_id"].astype(str) + suffix))
    terminals_file = work / "terminals.parquet"
    pd.concat(copies, ignore_index=True).to_parquet(terminals_file, index=False)
    return export, terminals_file, len(stream) * replicas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--work", type=Path, required=True, help="scratch directory")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    export, terminals, rows = replicate(args.data, args.replicas, args.work)
    print(f"bench: {rows:,} transactions written in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    features_main(
        [
            *("--transactions", str(export), "--terminals", str(terminals)),
            *("--out", str(args.work / "out"), "--params", str(args.params)),
            *("--master", args.master),
        ]
    )
    print(f"bench: feature job on {rows:,} transactions: {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
