"""What the stand-alone benchmarks (``make shadow-bench``, ``tail-bench``, ``record-bench``,
the rule cost) share: their workspace options, the stamp on their JSON record, and their
section in BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import machine

Section = Callable[[dict[str, Any]], list[str]]


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    """The interpreter that serves, and the workspace's bundle, feature repository and data."""
    parser.add_argument("--serve-python", type=Path, default=Path(sys.executable))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--feature-repo", type=Path, default=Path("feature_repo"))
    parser.add_argument("--data", type=Path, default=Path("data/v1/transactions.parquet"))
    parser.add_argument("--transactions", type=int, default=6000, help="request templates")


def stamped(
    module: str, argv: list[str] | None, measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """``measure()``'s record after the machine, the load average before and after it, and
    the command that ran it (``python -m module ...``)."""
    before = os.getloadavg()[0]
    record = measure()
    command = f"python -m {module} " + " ".join(argv or sys.argv[1:])
    return {
        "machine": machine(),
        "load_average": {"before": before, "after": os.getloadavg()[0]},
        "command": command.strip(),
        **record,
    }


def replace_section(path: Path, title: str, lines: list[str]) -> None:
    """Replace the section ``title`` in ``path`` (up to the next ``## ``), or append it."""
    text = path.read_text() if path.is_file() else ""
    if title not in text:
        path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) if text else "\n".join(lines))
        return
    head, rest = text.split(title, 1)
    following = rest.find("\n## ")
    tail = rest[following + 1 :] if following >= 0 else ""
    path.write_text(head + "\n".join(lines) + ("\n" + tail if tail else ""))


def saved_section(path: Path, section: Section) -> str:
    """``section`` of the record saved at ``path``, for ``make bench``'s report (empty when
    that benchmark has not been run)."""
    if not path.is_file():
        return ""
    return "\n" + "\n".join(section(json.loads(path.read_text())))
