"""The one GitHub-Markdown table writer of the project (audits, poisoning study, benchmarks,
replay summaries)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


def markdown_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    cell: Callable[[Any], str] = str,
) -> str:
    """A GitHub Markdown table, one line per row, no trailing newline; ``cell`` formats each
    value (``str`` by default)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
