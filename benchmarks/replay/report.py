"""The summary as Markdown: the same numbers as the JSON, as tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.reporting.markdown import markdown_table


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The table and the blank line after it."""
    return [markdown_table(header, rows, _cell), ""]


def _pairs(mapping: Mapping[str, Any], header: tuple[str, str]) -> list[str]:
    if not mapping:
        return ["(none)", ""]
    return _table(header, list(mapping.items()))


_QUALITY = ("transactions", "frauds", "alerts", "true_positives", "precision", "recall", "f1")


def render(summary: Mapping[str, Any]) -> str:
    """Markdown for a summary built by :func:`benchmarks.replay.summary.build`."""
    run, quality, latency = summary["run"], summary["quality"], summary["latency_ms"]
    out = ["# Replay summary", ""]
    if run["stopped_by_time_limit"] or run["interrupted"]:
        why = (
            "Interrupted"
            if run["interrupted"]
            else f"Stopped by the time limit ({run.get('max_seconds', 0):g} s)"
        )
        out += [
            f"**{why}:** {run['rows_sent']:,} of {run['rows_planned']:,} transactions sent.",
            "",
        ]
    snapshot = summary.get("features_snapshot")
    if snapshot and snapshot["sent_before_snapshot_start"]:
        out += [
            f"**Look-ahead warning:** {snapshot['sent_before_snapshot_start']:,} transactions "
            f"are older than the online store's batch snapshot ({snapshot['snapshot_start']} "
            f"to {snapshot['snapshot_end']}, from `{snapshot['record']}`): their batch features "
            "were computed from later data, which flatters the quality numbers.",
            "",
        ]
    out += ["## Run", ""]
    keys = (
        "data", "rows_planned", "rows_sent", "simulated_start", "simulated_end", "rate",
        "achieved_rps", "send_seconds", "answer_seconds", "wall_seconds", "late_sends",
        "waited_for_connection", "same_customer_in_flight", "stopped_by_time_limit", "interrupted",
        "label_delay_days", "url",
    )  # fmt: skip
    out += _table(("", "value"), [(k, run.get(k)) for k in keys])
    answers = summary["answers"]
    out += [
        "## Quality",
        "",
        f"Alert = decision other than approve. {answers['answered']:,} answered transactions; "
        f"{answers['excluded_from_quality']:,} failed ones are excluded.",
        "",
    ]
    rows = [("overall", *(quality["overall"][k] for k in _QUALITY))]
    rows += [(d["date"], *(d[k] for k in _QUALITY)) for d in quality["by_day"]]
    out += _table(("day (UTC)", *_QUALITY), rows)
    out += ["### Recall by fraud scenario", ""]
    scenarios = quality["recall_by_scenario"]
    out += _table(
        ("scenario", "frauds", "caught", "recall"),
        [(s["scenario"], s["frauds"], s["caught"], s["recall"]) for s in scenarios],
    )
    out += ["### Decisions", ""] + _pairs(quality["decisions"], ("decision", "answers"))
    out += ["## Latency (ms)", "", "From each transaction's due time (queueing included):", ""]
    out += _table(tuple(latency["from_due"]), [tuple(latency["from_due"].values())])
    out += ["Reported by the service (`latency_ms`):", ""]
    out += _table(tuple(latency["service"]), [tuple(latency["service"].values())])
    errors = summary["errors"]
    out += ["## Errors", "", f"{errors['total']:,} failed predictions.", ""]
    if errors["by_kind"]:
        first = errors["first_of_kind"]
        rows = [(k, n, first.get(k, "")[:120]) for k, n in errors["by_kind"].items()]
        out += _table(("kind", "count", "first of its kind"), rows)
    degraded = summary["degraded"]
    out += [
        "## Degradation",
        "",
        f"{degraded['answers']:,} answers with a non-empty `degraded` list "
        f"(share {_cell(degraded['share'])}).",
        "",
    ]
    out += _pairs(degraded["by_flag"], ("flag", "answers"))
    out += _pairs(degraded["decision_source"], ("decision_source", "answers"))
    out += _pairs(degraded["model_versions"], ("model_version", "answers"))
    fb = summary["feedback"]
    out += ["## Feedback", ""]
    out += _table(
        ("posted", "ok", "pending (not yet due)", "due, not posted"),
        [(fb["posted"], fb["ok"], fb["pending"], fb["due_not_posted"])],
    )
    for key, header in (("by_source", "source"), ("outcomes", "status"), ("errors", "error")):
        if fb[key]:
            out += _table((header, "labels"), list(fb[key].items()))
    return "\n".join(out).rstrip() + "\n"
