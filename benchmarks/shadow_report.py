"""BENCHMARKS.md's "Challenger in shadow" section from ``benchmarks/shadow_cost.json``
(``make shadow-bench``, a run of its own): the shadow counters read from ``/metrics``, the
table, and the section written there by the run and kept by ``make bench``'s report
(:func:`benchmarks.report.write_markdown`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.records import replace_section, saved_section
from training.reporting.markdown import markdown_table

SHADOW_JSON = Path("benchmarks/shadow_cost.json")
TITLE = "## Challenger in shadow: the champion's requests with and without it (issue 27)"
DROP_REASONS = ("full", "busy", "stopped", "error")


@dataclass(frozen=True)
class ShadowCounters:
    """The service's shadow counters at one moment (transactions since start)."""

    scored: float = 0.0
    dropped: dict[str, float] = field(default_factory=dict)
    queued: float = 0.0

    def minus(self, before: ShadowCounters) -> ShadowCounters:
        """What happened between ``before`` and this reading (the queue as now)."""
        reasons = self.dropped.keys() | before.dropped.keys()
        return ShadowCounters(
            self.scored - before.scored,
            {r: self.dropped.get(r, 0.0) - before.dropped.get(r, 0.0) for r in sorted(reasons)},
            self.queued,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "scored": int(self.scored),
            "dropped": {r: int(n) for r, n in self.dropped.items()},
            "queued": int(self.queued),
        }


def shadow_counters(text: str) -> ShadowCounters:
    """``fraud_shadow_scored_total``, ``fraud_shadow_dropped_total{reason}`` and the
    ``fraud_shadow_queue_rows`` gauge from a Prometheus exposition (0 when absent)."""
    scored, queued = 0.0, 0.0
    dropped: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fraud_shadow_scored_total":
                scored = sample.value
            elif sample.name == "fraud_shadow_dropped_total":
                reason = sample.labels.get("reason", "")
                dropped[reason] = dropped.get(reason, 0.0) + sample.value
            elif sample.name == "fraud_shadow_queue_rows":
                queued = sample.value
    return ShadowCounters(scored, dropped, queued)


def _ms(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"  # NaN: no answers


def _row(label: str, load: str, m: dict[str, Any]) -> list[str]:
    r = m["requests"]
    answered = r["requests"]
    row = [label, load, f"{r['throughput_rps']:,.0f}", _ms(r["p50_ms"]), _ms(r["p95_ms"]),
           _ms(r["p99_ms"]), f"{r['errors']:,}", f"{m['late_share']:.1%}"]  # fmt: skip
    shadow = m.get("shadow")
    if shadow is None:
        return [*row, "–", "–", "–"]
    dropped = {k: v for k, v in shadow["dropped"].items() if v}
    shed = ", ".join(f"{k} {v:,}" for k, v in dropped.items()) or "0"
    kept = f"{shadow['scored'] / answered:.1%}" if answered else "–"
    return [*row, f"{shadow['scored']:,}", shed, kept]


def table(record: dict[str, Any]) -> str:
    """One row per run of each variant."""
    header = ["variant", "load", "answered req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
              "sent late", "shadow scored", "shadow dropped", "scored / answered"]  # fmt: skip
    rows = []
    for key, label in (("no_shadow", "no challenger"), ("shadow", "challenger in shadow")):
        v = record["variants"][key]
        rows.append(_row(label, "saturation (closed loop)", v["saturation"]))
        for m in v["open_loop"]:
            load = f"open loop {m['offered_rps']:,.0f} req/s ({m['share']:.0%})"
            rows.append(_row(label, load, m))
    return markdown_table(header, rows)


def section(record: dict[str, Any]) -> list[str]:
    """The section's lines: title, how it was run, the table."""
    m, s, load = record["machine"], record["settings"], record["load_average"]
    pinned = ", pinned to core 0, the load generator on core 1" if s["pinned"] else ""
    shares = " and ".join(f"{share:.0%}" for share in s["rates"])
    return [
        TITLE,
        "",
        f"`{record['command']}` ([`{SHADOW_JSON}`]({SHADOW_JSON})), {m['date']}, commit "
        f"`{m['commit']}`, {m['cores']} cores ({m['cpu']}) shared with other work (load "
        f"average {load['before']:.1f} before, {load['after']:.1f} after).",
        "",
        f"The service (`python -m app`, one worker{pinned}) on the same bundle twice: "
        "without `CHALLENGER_URI`, and with `CHALLENGER_URI` set to that bundle (a second "
        "ensemble scored per answered transaction by the shadow thread, in the same process "
        f"and on the same core). Single `/v1/predict`, new transaction ids: {s['seconds']:g} s "
        f"closed loop on {s['connections']} connections, then {s['seconds']:g} s open loop at "
        f"{shares} of the no-challenger saturation (the same offered rates for both), latency "
        "from the due time. *Sent late*: requests the generator itself sent over 1 ms after "
        "they were due (its own lateness, not the service's). *Shadow scored / "
        "dropped*: `fraud_shadow_scored_total` and `fraud_shadow_dropped_total{reason}` over "
        "the run (read once the shadow queue drained).",
        "",
        table(record),
        "",
    ]


def markdown(path: Path = SHADOW_JSON) -> str:
    """The section for ``make bench``'s report, if the benchmark has been run."""
    return saved_section(path, section)


def update_benchmarks(record: dict[str, Any], path: Path) -> None:
    """Write the section into ``path``."""
    replace_section(path, TITLE, section(record))
