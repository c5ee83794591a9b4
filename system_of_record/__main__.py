"""The system of record's command line, for the pipeline jobs and operators.

python -m system_of_record counts   --url URL [--password-file F]
python -m system_of_record export   --url URL [--password-file F] --out DIR --days N
python -m system_of_record backfill --url URL [--password-file F] --data FILE.parquet ...
python -m system_of_record job-run  --url URL [--password-file F] --job NAME --status S
python -m system_of_record lists add NAME VALUE --url URL [--by WHO] [--note TEXT]
python -m system_of_record lists remove NAME VALUE --url URL [--by WHO]
python -m system_of_record lists show --url URL
python -m system_of_record review stats --url URL
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from system_of_record.export import backfill, export_history
from system_of_record.review_queue import queue_stats
from system_of_record.rule_lists import add_entry, entry_details, list_entries, remove_entry
from system_of_record.store import JOBS, RecordStore, open_store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m system_of_record", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lists = commands.add_parser("lists").add_subparsers(dest="action", required=True)
    review = commands.add_parser("review").add_subparsers(dest="action", required=True)
    leaves = {
        name: commands.add_parser(name) for name in ("counts", "export", "backfill", "job-run")
    }
    leaves |= {f"lists {name}": lists.add_parser(name) for name in ("add", "remove", "show")}
    leaves["review stats"] = review.add_parser("stats")
    for command in leaves.values():
        command.add_argument("--url", required=True, help="postgresql://... or sqlite:///path")
        command.add_argument("--password-file", type=Path, help="the database password")
    for name in ("lists add", "lists remove"):
        leaves[name].add_argument("name", help="the list, as the rule set declares it")
        leaves[name].add_argument("value")
        leaves[name].add_argument("--by", default="cli", help="who makes the change")
    leaves["lists add"].add_argument("--note", default="", help="why")
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
        if args.command in ("lists", "review"):
            _operate(store, args)
        elif args.command == "counts":
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


def _operate(store: RecordStore, args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    if args.command == "review":
        print(json.dumps(queue_stats(store, now)))
    elif args.action == "add":
        print(add_entry(store, args.name, args.value, args.by, args.note, now))
    elif args.action == "remove":
        print(remove_entry(store, args.name, args.value, args.by, now))
    else:
        version, _ = list_entries(store)
        print(json.dumps({"version": version, "entries": entry_details(store)}, indent=2))


if __name__ == "__main__":
    main()
