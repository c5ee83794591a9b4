"""Score a CSV file of transactions with the service's own scorer and feature lookup.

    python -m app.batch --in transactions.csv --out scored.csv

Every input row appears in the output, in order, with its original columns plus the
answer fields; a row that fails validation keeps empty answer fields and says why in
``error`` (the same rules as the API, and the message never repeats the bad value).
Rows go through the same online-feature lookup and scorer as ``/v1/predict/batch``, in
chunks, with progress on stderr. Settings (bundle, feature repo) are the service's.

It is the service run in-process in an offline mode (``ScoringService.score_blocking``:
no time budget, no velocity push), not a client of its HTTP API. Rows are read and
written with the CSV forms of the schemas (:mod:`app.schemas.csv_rows`,
:mod:`app.schemas.answers`), as the dashboard's file upload reads and writes them.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from app.core.config import Settings
from app.schemas import TransactionIn
from app.schemas.answers import ANSWER_COLUMNS, answer_cells, unanswered_cells
from app.schemas.csv_rows import error_text, parse_row
from app.services.loading import load_scoring
from app.services.scoring_service import ScoringService


def _chunks(reader: Iterator[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    chunk: list[dict[str, str]] = []
    for row in reader:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_file(
    service: ScoringService, source: TextIO, target: TextIO, chunk: int, progress: TextIO
) -> dict[str, int]:
    """Stream ``source`` CSV to ``target`` with answers; returns row counts."""
    reader = csv.DictReader(source)
    if reader.fieldnames is None:
        raise SystemExit("batch: the input file is empty")
    extra = [c for c in ANSWER_COLUMNS if c not in reader.fieldnames]
    writer = csv.DictWriter(target, fieldnames=[*reader.fieldnames, *extra])
    writer.writeheader()
    counts = {"rows": 0, "scored": 0, "invalid": 0}
    started = time.perf_counter()
    version = service.predictor.version
    for rows in _chunks(iter(reader), chunk):
        parsed: list[TransactionIn | str] = []
        for row in rows:
            try:
                parsed.append(parse_row(row))
            except ValidationError as exc:
                parsed.append(error_text(exc))
        valid = [p for p in parsed if isinstance(p, TransactionIn)]
        answers = iter(service.score_blocking(valid)) if valid else iter(())
        for row, item in zip(rows, parsed, strict=True):
            if isinstance(item, TransactionIn):
                row.update(answer_cells(next(answers), version))
                counts["scored"] += 1
            else:
                row.update(unanswered_cells(item))
                counts["invalid"] += 1
            writer.writerow(row)
        counts["rows"] += len(rows)
        rate = counts["rows"] / max(time.perf_counter() - started, 1e-9)
        progress.write(f"\rbatch: {counts['rows']:,} rows ({rate:,.0f} rows/s)")
        progress.flush()
    progress.write("\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in", dest="source", type=Path, required=True, help="input CSV")
    parser.add_argument("--out", dest="target", type=Path, required=True, help="output CSV")
    parser.add_argument("--chunk", type=int, default=1_000, help="rows per lookup (<= 1000)")
    parser.add_argument("--bundle", help="bundle path or models:/ URI (default: BUNDLE_URI)")
    parser.add_argument("--feature-repo", type=Path, help="Feast repo (default: FEATURE_REPO)")
    args = parser.parse_args(argv)
    if not 1 <= args.chunk <= 1_000:
        parser.error("--chunk must be between 1 and 1000")
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    overrides: dict[str, Any] = {}
    if args.bundle:
        overrides["bundle_uri"] = args.bundle
    if args.feature_repo:
        overrides["feature_repo"] = args.feature_repo
    settings = Settings(**overrides)
    scoring = load_scoring(settings)
    if scoring.model.problem:
        print(f"batch: no model ({scoring.model.problem}); scoring with rules", file=sys.stderr)
    if scoring.feature_problem:
        print(f"batch: no feature store ({scoring.feature_problem})", file=sys.stderr)
    args.target.parent.mkdir(parents=True, exist_ok=True)
    with args.source.open(newline="") as source, args.target.open("w", newline="") as target:
        counts = score_file(scoring.service, source, target, args.chunk, sys.stderr)
    scoring.service.close()
    print(
        f"batch: {counts['rows']:,} rows, {counts['scored']:,} scored, "
        f"{counts['invalid']:,} invalid -> {args.target}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
