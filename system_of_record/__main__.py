"""The system of record's command line, for the pipeline jobs and operators.

python -m system_of_record counts   --url URL [--password-file F]
python -m system_of_record export   --url URL [--password-file F] --out DIR --days N
python -m system_of_record backfill --url URL [--password-file F] --data FILE.parquet ...
python -m system_of_record job-run  --url URL [--password-file F] --job NAME --status S
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from system_of_record.export import backfill, export_history
from system_of_record.store import JOBS, open_store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m system_of_record", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("counts", "export", "backfill", "job-run"):
        command = commands.add_parser(name)
        command.add_argument("--url", required=True, help="postgresql://... or sqlite:///path")
        command.add_argument("--password-file", type=Path, help="the database password")
    commands.choices["export"].add_argument("--out", type=Path, required=True)
    commands.choices["export"].add_argument("--days", type=int, default=45)
    commands.choices["backfill"].add_argument("--data", type=Path, nargs="+", required=True)
    commands.choices["backfill"].add_argument("--label-delay-days", type=float, default=7.0)
    commands.choices["job-run"].add_argument("--job", choices=JOBS, required=True)
    commands.choices["job-run"].add_argument(
        "--status", choices=("succeeded", "failed"), required=True
    )
    commands.choices["job-run"].add_argument("--started", help="ISO time (default: now)")
    commands.choices["job-run"].add_argument("--detail", default="{}", help="a JSON object")
    args = parser.parse_args(argv)

    store = open_store(args.url, args.password_file)
    began = time.perf_counter()
    try:
        if args.command == "counts":
            print(json.dumps(store.counts()))
        elif args.command == "export":
            written = export_history(store, args.out, args.days)
            print(
                f"export: {sum(written.values()):,} transactions in {len(written)} daily "
                f"partitions -> {args.out / 'transactions'} "
                f"({time.perf_counter() - began:.1f}s)"
            )
        elif args.command == "backfill":
            frame = pd.concat([pd.read_parquet(p) for p in args.data], ignore_index=True)
            rows, labels = backfill(store, frame, timedelta(days=args.label_delay_days))
            print(
                f"backfill: {rows:,} transactions, {labels:,} labels "
                f"({time.perf_counter() - began:.1f}s)"
            )
        else:
            now = datetime.now(UTC)
            started = datetime.fromisoformat(args.started) if args.started else now
            detail = json.loads(args.detail)
            store.record_job_run(args.job, args.status, started, now, detail)
            print(f"job-run: {args.job} {args.status} at {now.isoformat()}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
