"""The poisoning study's table: one row per label variant and defense setting.

The ``poisoning`` stage writes it to ``reports/poisoning.md``; the audit report repeats it
in its Poisoning section. Stages import this module; it imports no stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from training.reporting.markdown import markdown_table


def poisoning_row(r: dict[str, Any]) -> tuple[str, ...]:
    """One run's cells: labels, defense, AUPRC, recall in budget, the alert tier's
    precision / recall, flipped labels and, with the defense on, what it flagged."""
    flagged = (
        (f"{r['flagged']:,}", f"{r['flagged_precision']:.2f}", f"{r['flagged_recall']:.2f}")
        if "flagged" in r
        else ("-", "-", "-")
    )
    return (
        r["labels"],
        "on" if r["defense"] else "off",
        f"{r['auprc']:.4f}",
        f"{r['recall_at_budget']:.3f}",
        f"{r['precision_at_alert_tier']:.3f} / {r['recall_at_alert_tier']:.3f}",
        f"{r['flipped_labels']:,}",
        *flagged,
    )


def poisoning_table(rows: Iterable[dict[str, Any]], k: int) -> str:
    """The study as a Markdown table, newline-terminated (``reports/poisoning.md``)."""
    header = (
        "labels",
        "defense",
        "AUPRC",
        f"recall@{k}/day",
        "precision / recall at alert tier",
        "flipped",
        "flagged",
        "flagged precision",
        "flagged recall",
    )
    return markdown_table(header, (poisoning_row(r) for r in rows)) + "\n"
