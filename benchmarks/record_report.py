"""BENCHMARKS.md's "System of record" section from ``benchmarks/record_throughput.json``
(``make record-bench``, a run of its own): written there by the run, and kept by
``make bench``'s report (:func:`benchmarks.report.write_markdown`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.records import saved_section

RECORD_JSON = Path("benchmarks/record_throughput.json")
TITLE = "## System of record: write throughput under the API's load (issue 26)"


def _phase_row(database: str, p: dict[str, Any]) -> str:
    r = p["requests"]
    return (
        f"| {database} | {p['endpoint']} | {p['scores_per_s']:,.0f} | {r['p50_ms']:.2f} "
        f"| {r['p99_ms']:.2f} | {p['rows_per_s_during_load']:,.0f} | {p['spool_max']:,} "
        f"| {p['lag_s']:.2f} | {p['rows_arrived']:,} / {p['acknowledged_rows']:,} |"
    )


def section(record: dict[str, Any]) -> list[str]:
    """The section's lines (a title, how it was run, two tables)."""
    m, s = record["machine"], record["settings"]
    out = [
        TITLE,
        "",
        f"`{record['command']}` ([`{RECORD_JSON}`]({RECORD_JSON})), {m['date']}, "
        f"{m['cores']} cores ({m['cpu']}), shared with other work; PostgreSQL "
        f"(Debian's, loopback, `fsync=on`) and the embedded SQLite default.",
        "",
        f"**The store alone**: `RecordStore.write_decisions`, {s['store_rows']:,} new rows per "
        "trial in batches of each size (one transaction per batch), rows/s, median of "
        f"{record['store']['postgresql']['trials']}:",
        "",
        "| batch | PostgreSQL rows/s | SQLite rows/s |",
        "|---|---|---|",
    ]
    pg, lite = record["store"]["postgresql"]["batches"], record["store"]["sqlite"]["batches"]
    for size, rates in pg.items():
        out.append(
            f"| {int(size):,} | {rates['rows_per_s']:,.0f} | {lite[size]['rows_per_s']:,.0f} |"
        )
    out += [
        "",
        f"**Under the API's load**: the service (`python -m app`, one worker"  # nosec B608 # Markdown, not SQL
        f"{', pinned to core 0, the load generator on core 1' if s['pinned'] else ''}) at "
        f"saturation, closed loop, {s['seconds']:g} s per endpoint ({s['connections']} connections "
        "for single transactions, 2 for batches: the batches admitted at once), every "
        "transaction id new; the shipper moves the audit log's rows to the "
        "system of record in the background. *rows/s in the database* is the rise of "
        "`SELECT count(*) FROM decisions` over the load; *spool max* the most decisions "
        "waiting (`/readyz`); *lag* the time from the end of the load until every "
        "acknowledged row is in the database.",
        "",
        "| system of record | endpoint | scores/s acknowledged | p50 ms | p99 ms "
        "| rows/s in the database | spool max | lag s | rows on record / acknowledged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for database, label in (("postgresql", "PostgreSQL"), ("sqlite", "embedded SQLite")):
        for endpoint in ("predict", "batch"):
            out.append(_phase_row(label, record["api"][database][endpoint]))
    return [*out, ""]


def markdown(path: Path = RECORD_JSON) -> str:
    """The section for ``make bench``'s report, if the benchmark has been run."""
    return saved_section(path, section)


def update_benchmarks(record: dict[str, Any], path: Path) -> None:
    """Replace the section in ``path`` (up to the next ``## ``), or append it."""
    lines = section(record)
    text = path.read_text() if path.is_file() else ""
    if TITLE not in text:
        path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) if text else "\n".join(lines))
        return
    head, rest = text.split(TITLE, 1)
    following = rest.find("\n## ")
    tail = rest[following + 1 :] if following >= 0 else ""
    path.write_text(head + "\n".join(lines) + ("\n" + tail if tail else ""))
