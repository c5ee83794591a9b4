"""``python -m benchmarks.replay.client``: replay card transactions through a running
local service at a fixed rate (the streaming client; ``make replay`` runs it through
:mod:`benchmarks.replay.orchestrate`).

    python -m benchmarks.replay.client --data data/v1/transactions.parquet --rate 200 --limit 100000

Every input is an option (it reads no environment variable); the API key comes from
``--api-key-file`` (or ``--api-key``, which shows in ``ps``).

Exit status: 0 when every planned transaction was answered 2xx; 1 when some failed, the
time limit stopped the run, or no service answers; 2 for bad arguments, a non-loopback
URL or an unreadable data file. The summary is written whenever the run took place.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from benchmarks.http_client import Client, NotLoopback, RequestError, Target, parse_url
from benchmarks.replay.report import render
from benchmarks.replay.runner import Pacing, Run, replay
from benchmarks.replay.stream import (
    SECONDS_PER_DAY,
    Transaction,
    read_transactions,
    select,
    to_transactions,
)
from benchmarks.replay.summary import build, file_sha256, snapshot_exposure, write
from benchmarks.transactions import DataError

# The client's own version, recorded in every summary. It carried the service's version
# (app.__version__, 0.4.0) until it left app/ (issue 23); bump it when the client changes.
CLIENT_VERSION = "0.4.0"

DEFAULT_SNAPSHOT = Path("feature_repo/data/materialized.json")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _timestamp(text: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text} ({exc})") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.replay.client",
        description="Replay card transactions in timestamp order through a local service "
        "at a fixed rate, post delayed feedback labels, and write a summary.",
    )
    p.add_argument("--data", type=Path, required=True, help="transactions (.parquet or .csv)")
    p.add_argument("--rate", type=_positive_float, required=True, help="transactions per second")
    p.add_argument("--limit", type=_positive_int, help="send at most this many transactions")
    p.add_argument("--start", type=_timestamp, help="skip transactions before this time (UTC)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the service (loopback only)")
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-file",
        type=Path,
        help="a file whose first line is the X-API-Key (never written out)",
    )
    key.add_argument("--api-key", help="X-API-Key (shows in ps: prefer --api-key-file)")
    p.add_argument("--max-in-flight", type=_positive_int, default=256, help="concurrency cap")
    p.add_argument("--max-seconds", type=_positive_float, help="default: rows/rate x 2 + 60")
    p.add_argument("--timeout", type=_positive_float, default=10.0, help="seconds per request")
    p.add_argument("--label-delay-days", type=_non_negative, default=7.0, help="simulated days")
    p.add_argument("--out", type=Path, default=Path("var/replay/summary.json"))
    p.add_argument(
        "--features-snapshot",
        default=str(DEFAULT_SNAPSHOT),
        help="the materialize stage's record of the online store, to flag look-ahead "
        "('none' to skip; skipped when the file does not exist)",
    )
    return p


def _read_key(path: Path) -> str:
    """The first line of ``path``, stripped; SystemExit(2) when unreadable or empty."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise _fail(f"--api-key-file: {exc}", 2) from None
    key = lines[0].strip() if lines else ""
    if not key:
        raise _fail(f"--api-key-file: {path} is empty", 2)
    return key


def _fail(message: str, status: int) -> SystemExit:
    print(f"replay: {message}", file=sys.stderr)
    return SystemExit(status)


async def _readiness(target: Target, timeout: float) -> dict[str, Any]:
    """``GET /readyz``: the service's model and feature store, or SystemExit(1)."""
    client = Client(target, 1, timeout)
    try:
        response = await client.request("GET", "/readyz")
    except RequestError as exc:
        raise _fail(f"no service answers at http://{target.authority} ({exc})", 1) from None
    finally:
        client.close()
    if response.status != 200:
        detail = response.body[:300].decode(errors="replace")
        raise _fail(f"the service is not ready (/readyz {response.status}: {detail})", 1)
    try:
        body: dict[str, Any] = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return {"readyz": response.body[:300].decode(errors="replace")}
    return body


async def _run(
    target: Target, args: argparse.Namespace, transactions: Sequence[Transaction], pacing: Pacing
) -> tuple[dict[str, Any], Run]:
    service = await _readiness(target, args.timeout)
    client = Client(target, args.max_in_flight, args.timeout, args.api_key)
    try:
        return service, await replay(transactions, client, pacing, progress=sys.stderr)
    finally:
        client.close()


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the serving image has it
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> int:
    """Run a replay; returns the exit status."""
    args = parser().parse_args(argv)
    began = time.perf_counter()
    try:
        target = parse_url(args.url)
    except NotLoopback as exc:
        raise _fail(str(exc), 2) from None
    if args.out.suffix.lower() == ".md":
        raise _fail("--out is the JSON summary; the Markdown goes next to it", 2)
    if not args.data.is_file():
        raise _fail(f"no such file: {args.data}", 2)
    if args.api_key_file is not None:
        args.api_key = _read_key(args.api_key_file)
    args.api_key = args.api_key or None
    try:
        frame = select(read_transactions(args.data), args.start, args.limit)
        transactions = to_transactions(frame)
    except DataError as exc:
        raise _fail(str(exc), 2) from None
    if not transactions:
        raise _fail("no transactions to send (check --start and --limit)", 2)
    del frame
    gc.freeze()  # the loaded stream is long-lived: keep the collector off it during the run
    max_seconds = args.max_seconds or len(transactions) / args.rate * 2 + 60
    pacing = Pacing(args.rate, max_seconds, args.label_delay_days * SECONDS_PER_DAY)
    snapshot_path = None if args.features_snapshot == "none" else Path(args.features_snapshot)
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    print(
        f"replay: {len(transactions):,} transactions at {args.rate:g}/s to {args.url} "
        f"(at most {max_seconds:,.6g} s)",
        file=sys.stderr,
    )
    try:
        with _event_loop_runner() as runner:
            service, run = runner.run(_run(target, args, transactions, pacing))
    finally:
        gc.unfreeze()
    settings = {
        "data": str(args.data),
        "data_sha256": file_sha256(args.data),
        "start": None if args.start is None else args.start.isoformat(),
        "limit": args.limit,
        "url": args.url,
        "rate": args.rate,
        "max_in_flight": args.max_in_flight,
        "max_seconds": max_seconds,
        "timeout": args.timeout,
        "label_delay_days": args.label_delay_days,
        "started_at": started_at,
        "wall_seconds": round(time.perf_counter() - began, 3),
        "client_version": CLIENT_VERSION,
    }
    snapshot = None
    if snapshot_path is not None and snapshot_path.is_file():
        snapshot = snapshot_exposure(snapshot_path, transactions[: run.sent])
    summary = build(transactions, run, settings, service, snapshot)
    markdown = write(summary, args.out, render(summary))
    answers, errors = summary["answers"], summary["errors"]
    print(
        f"replay: {run.sent:,} sent, {answers['answered']:,} answered, {errors['total']:,} failed"
        f"{', STOPPED BY THE TIME LIMIT' if run.stopped_by_time_limit else ''}"
        f"{', INTERRUPTED' if run.interrupted else ''}; "
        f"summary in {args.out} and {markdown}",
        file=sys.stderr,
    )
    complete = answers["answered"] == len(transactions)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
