"""BENCHMARKS.md from ``benchmarks/results.json``: machine, commands, raw figures, ratios,
and every target of issue #7 judged from the figures of the same run; then the soak of
``benchmarks/soak.json`` (``make soak``, a run of its own) when there is one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.protocols import section as protocol_section
from training.reporting.markdown import markdown_table

HEADER = """# Benchmarks

Written by `make bench` (`python -m benchmarks`); the raw figures are in
[`benchmarks/results.json`](benchmarks/results.json). What is measured and how is in
[docs/performance.md](docs/performance.md). Every figure below comes from the same run.
"""
SOAK_NOTE = """The soak at the end comes from a run of its own, `make soak`
([`benchmarks/soak.json`](benchmarks/soak.json)).
"""

SOAK_JSON = Path("benchmarks/soak.json")


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _target(met: bool) -> str:
    return "**met**" if met else "**not met**"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target that this run measured."""
    rows: list[tuple[str, str, str]] = []
    service = results.get("service")
    if service is not None:
        saturation = service["saturation"]["throughput_rps"]
        rows.append(
            (
                "≥ 1,000 req/s on one core, full path",
                f"{saturation:,.0f} req/s",
                _target(saturation >= 1000),
            )
        )
        at75 = next(level for level in service["open_loop"] if level["share"] == 75)
        rows.append(
            (
                "p99 ≤ 10 ms at 75 % of saturation",
                f"{_ms(at75['p99_ms'])} at {at75['offered_rps']:,.0f} req/s",
                _target(at75["p99_ms"] <= 10 and at75["errors"] == 0),
            )
        )
        if saturation < 1000:
            rows.append(
                (
                    "p99 ≤ 10 ms at 750 req/s (75 % of the 1,000 target)",
                    "see the open-loop table",
                    "not measured at that rate",
                )
            )
        unloaded = service["unloaded"]
        rows.append(
            ("unloaded p50 ≤ 1.5 ms", _ms(unloaded["p50_ms"]), _target(unloaded["p50_ms"] <= 1.5))
        )
        rows.append(
            ("unloaded p99 ≤ 5 ms", _ms(unloaded["p99_ms"]), _target(unloaded["p99_ms"] <= 5))
        )
        big = next(b for b in service["batch"] if b["size"] == 1000)
        rows.append(
            (
                "batch of 1,000: ≥ 50,000 tx/s per core",
                f"{big['tx_per_second']:,.0f} tx/s",
                _target(big["tx_per_second"] >= 50_000),
            )
        )
        cold = max(c["ready_seconds"] for c in service["cold_starts"])
        rows.append(
            (
                "cold start to ready ≤ 3 s",
                f"{cold:.2f} s (worst of {len(service['cold_starts'])})",
                _target(cold <= 3),
            )
        )
        rss = max(service["rss_ready_mb"], service["rss_after_load_mb"])
        rows.append(("resident memory ≤ 300 MB per worker", f"{rss:.0f} MiB", _target(rss <= 300)))
        naive = results.get("naive")
        if naive is not None:
            ratio = saturation / max(naive["saturation"]["throughput_rps"], 1e-9)
            rows.append(
                ("≥ 10× the naive baseline's throughput", f"{ratio:,.0f}×", _target(ratio >= 10))
            )
    return rows


RUN_HEADER = ("load", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests", "errors", "late")


def _run_row(name: str, run: dict[str, Any]) -> list[Any]:
    return [
        name,
        f"{run['throughput_rps']:,.0f}",
        f"{run['p50_ms']:.2f}",
        f"{run['p95_ms']:.2f}",
        f"{run['p99_ms']:.2f}",
        f"{run['max_ms']:.1f}",
        f"{run['requests']:,}",
        run["errors"],
        run.get("late", 0),
    ]


def render(results: dict[str, Any], soak: dict[str, Any] | None = None) -> str:
    """The whole page; the soak section at the end when ``soak`` is given."""
    m = results["machine"]
    out = [HEADER] if soak is None else [HEADER, SOAK_NOTE]
    out += [
        "## Machine and run",
        "",
        f"- {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}; "
        f"{m['platform']}",
        f"- commit `{m['commit']}`, {m['date']}; whole run {results.get('total_seconds', '?')} s",
        f"- server pinned to core 0 and load generator to core 1: {results['settings']['pinned']}; "
        f"{results['settings']['seconds_per_level']:.0f} s per load level; "
        f"{results['settings']['distinct_requests']:,} distinct transactions (the last ones of the "
        "time-later v1 stream, so many customers and terminals)",
        "- commands: `make bench` (= `python -m benchmarks`); the pipeline figures with "
        "`python -m benchmarks --pipeline scratch`",
        "",
        "## Targets (issue #7)",
        "",
    ]
    out.append(
        markdown_table(["target", "measured", "verdict"], [list(r) for r in targets(results)])
    )
    service, naive = results.get("service"), results.get("naive")
    if service is not None:
        out += ["", "## The service over HTTP (one worker, one core)", ""]
        out += [
            f"Production settings: INFO JSON logs (to a file), tracing on (SERVER span and stage "
            f"spans, no exporter), the real Feast SQLite online store, the full answer with "
            f"reason codes. The load generator's own ceiling in this run (against a server "
            f"that does nothing, `benchmarks/static_server.py`): "
            f"{service['generator_ceiling_rps']:,.0f} req/s; the service's `/healthz` (no "
            f"scoring, same middleware) answered {service['healthz_rps']:,.0f} req/s.",
            "",
        ]
        rows = [_run_row("unloaded: 1 connection, one at a time", service["unloaded"])]
        rows.append(_run_row("saturation: 32 connections, closed loop", service["saturation"]))
        for level in service["open_loop"]:
            rows.append(
                _run_row(
                    f"open loop at {level['share']} % ({level['offered_rps']:,.0f} req/s offered)",
                    level,
                )
            )
        out.append(markdown_table(RUN_HEADER, rows))
        out += [
            "",
            "Open-loop latencies count from the moment each request was due. `late`: requests "
            "the generator itself sent more than 1 ms after they were due; their latency "
            "includes the generator's lag, so a large count means the tail is partly the "
            "generator's.",
            "",
        ]
        out += ["### Batch endpoint", ""]
        out.append(markdown_table(
            ["batch size", "transactions/s", "requests/s", "p50 ms", "p99 ms", "errors"],
            [
                [b["size"], f"{b['tx_per_second']:,.0f}", f"{b['throughput_rps']:,.1f}",
                 f"{b['p50_ms']:.1f}", f"{b['p99_ms']:.1f}", b["errors"]]
                for b in service["batch"]
            ],
        ))  # fmt: skip
        out += ["", "### Cold start and memory", ""]
        out.append(
            markdown_table(
                ["run", "launch to /readyz 200", "RSS when ready"],
                [
                    [i + 1, f"{c['ready_seconds']:.2f} s", f"{c['rss_ready_mb']:.0f} MiB"]
                    for i, c in enumerate(service["cold_starts"])
                ],
            )
        )
        out += ["", f"RSS after all the load above: {service['rss_after_load_mb']:.0f} MiB.", ""]
    inprocess = results.get("inprocess")
    if inprocess is not None:
        out += ["## Where a request's time goes (in process, one transaction at a time)", ""]
        out.append(
            markdown_table(
                ["stage", "median µs", "p99 µs"],
                [[k, v["median_us"], v["p99_us"]] for k, v in inprocess["stages"].items()],
            )
        )
        out += [
            "",
            f"Sum of the medians: {inprocess['sum_of_medians_us']:,.0f} µs over "
            f"{inprocess['transactions']:,} transactions. The rest of a request's time is "
            "HTTP, FastAPI, tracing, metrics and logging. Under load, single requests that "
            "queue together are scored as one group, so these per-call costs are shared.",
            "",
            "The slower ways the service does not use, on the same transactions:",
            "",
        ]
        out.append(
            markdown_table(
                ["alternative", "median µs", "p99 µs"],
                [[k, v["median_us"], v["p99_us"]] for k, v in inprocess["alternatives"].items()],
            )
        )
        out += [""]
    if naive is not None and service is not None:
        out += ["## The naive baseline, same run, same core, same requests", ""]
        ours, theirs = service["saturation"], naive["saturation"]
        ratio = ours["throughput_rps"] / max(theirs["throughput_rps"], 1e-9)
        fast, slow = service["unloaded"], naive["unloaded"]
        cold = max(c["ready_seconds"] for c in service["cold_starts"])
        out.append(markdown_table(
            ["measure", "service", "naive", "ratio"],
            [
                ["saturation req/s", f"{ours['throughput_rps']:,.0f}",
                 f"{theirs['throughput_rps']:,.1f}", f"{ratio:,.0f}×"],
                ["unloaded p50 ms", f"{fast['p50_ms']:.2f}", f"{slow['p50_ms']:.2f}",
                 f"{slow['p50_ms'] / fast['p50_ms']:,.1f}× faster"],
                ["unloaded p99 ms", f"{fast['p99_ms']:.2f}", f"{slow['p99_ms']:.2f}",
                 f"{slow['p99_ms'] / fast['p99_ms']:,.1f}× faster"],
                ["launch to ready s", f"{cold:.2f}", f"{naive['ready_seconds']:.2f}", ""],
                ["RSS when ready MiB", f"{service['rss_ready_mb']:.0f}",
                 f"{naive['rss_ready_mb']:.0f}", ""],
            ],
        ))  # fmt: skip
        out += [
            "",
            f"The naive server answered {theirs['requests']:,} requests at saturation with "
            f"{theirs['errors']} errors ({theirs['connections']} connections). Its fraud "
            f"probabilities equal the service's to {naive['parity_max_abs_diff']:.1e} on "
            f"{naive['parity_checked']} transactions.",
            "",
        ]
    protocol = results.get("protocol")
    if protocol is not None:
        out += protocol_section(protocol, same_run=not protocol.get("own_run", False))
    training = results.get("training")
    if training:
        out += ["## Training", ""]
        external = training.get("external")
        if external is not None:
            phases = ", ".join(f"{k} {v} s" for k, v in external["phase_seconds"].items())
            out += [
                f"- `training.external --schema handbook` on {external['rows']:,} rows: "
                f"**{external['seconds']:.0f} s** wall ({phases}); test AUPRC "
                f"{external['test_auprc']} on {external['test_rows']:,} time-later rows.",
            ]
        pipeline = training.get("pipeline")
        if pipeline is not None:
            ran = [s for s in pipeline["stages"] if s["ran"]]
            total = sum(s["seconds"] for s in pipeline["stages"])
            stages = ", ".join(
                f"{s['stage']} {s['seconds']:.0f} s" + ("" if s["ran"] else " (up to date)")
                for s in pipeline["stages"]
            )
            if pipeline.get("failed"):
                out += [f"- **The training pipeline failed at stage `{pipeline['failed']}`.**"]
            out += [
                f"- Training pipeline (`dvc repro` stage by stage, mode `{pipeline['mode']}`, "
                f"{len(ran)} of {len(pipeline['stages'])} stages ran): **{total:.0f} s**: "
                f"{stages}.",
            ]
        out += [""]
    if soak is not None:
        out += soak_section(soak)
    return "\n".join(out).rstrip() + "\n"


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def _window_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def soak_section(soak: dict[str, Any]) -> list[str]:
    """The soak's settings, verdicts and windows (``benchmarks/soak.json``)."""
    m, settings, service = soak["machine"], soak["settings"], soak["service"]
    checks, capacity = soak["verdicts"], service["capacity"]
    how = (
        f"measured: closed loop, {capacity['connections']} connections, "
        f"{settings['capacity_seconds']:.0f} s, {capacity['errors']} errors"
        if capacity["measured"]
        else "given with `--capacity`"
    )
    out = [
        "## Soak (issue #8)",
        "",
        f"A run of its own: `make soak` (`{soak['command']}`), commit `{m['commit']}`, "
        f"{m['date']}, {m['cpu']}, {m['cores']} cores; server pinned to core 0 and load "
        f"generator to core 1: {settings['pinned']}. The service as above, with its label "
        f"log and audit log in a temporary directory. Capacity "
        f"{capacity['throughput_rps']:,.0f} req/s ({how}); then **{settings['minutes']:g} "
        f"min** without a pause at {_percent(settings['load'])} of it, "
        f"{service['offered_rps']:,.0f} req/s offered in an open loop on 127.0.0.1. "
        f"One request in {settings['feedback_every']} is a `/v1/feedback` label for a "
        f"transaction id not labelled before (every {settings['repeat_every']}th label a "
        f"repeat), the rest `/v1/predict` on the last "
        f"{settings['distinct_predictions']:,} transactions of the v1 stream in turn. "
        f"Windows of {settings['window_seconds']:g} s; the first is the warm-up.",
        "",
    ]
    failures, memory, latency = checks["failures"], checks["memory"], checks["latency"]
    rules = checks["rules"]
    bounded = settings["minutes"] >= 10 and settings["load"] >= 0.7
    rows = [
        [
            "≥ 10 min at 70 % of the measured capacity",
            f"{settings['minutes']:g} min at {_percent(settings['load'])} "
            f"({service['soak_seconds']:.0f} s of open loop)",
            _target(bounded),
        ],
        [
            "zero failed requests",
            f"{failures['failed']:,} of {failures['sent']:,} (soak {failures['soak_sent']:,}, "
            f"warm-up and capacity {failures['sent'] - failures['soak_sent']:,})",
            _target(failures["passed"]),
        ],
        [
            f"RSS growth ≤ {_percent(rules['max_rss_growth'])}, end of the first window to "
            "the end of the last",
            f"{100 * memory['growth']:+.1f} % ({memory['first_window_mb']:.0f} → "
            f"{memory['last_window_mb']:.0f} MiB); from ready "
            f"{100 * memory['growth_from_ready']:+.1f} %; max {memory['max_mb']:.0f} MiB",
            _target(memory["passed"]),
        ],
    ]
    if "p99_ratio" in latency:
        measured = (
            f"p99 {latency['p99_last_third_ms']:.1f} ms in the last third vs "
            f"{latency['p99_first_third_ms']:.1f} ms in the first ({latency['p99_ratio']:.2f}×); "
            f"worst window p50 {latency['p50_worst_ms']:.1f} ms vs median "
            f"{latency['p50_median_ms']:.1f} ms ({latency['p50_ratio']:.2f}×)"
        )
    else:
        measured = latency.get("reason", "not measured")
    rows.append(
        [
            f"latency stable: median window p99, last third ≤ {rules['max_p99_ratio']:g}× "
            f"first third; every window p50 ≤ {rules['max_p50_ratio']:g}× the median",
            measured,
            _target(latency["passed"]),
        ]
    )
    out += markdown_table(["target", "measured", "verdict"], rows).split("\n")
    out += [""]
    out += markdown_table(
        ["window", "end s", "sent", "ok", "non-2xx", "broken", "p50 ms", "p95 ms", "p99 ms",
         "max ms", "late", "RSS MiB", "CPU %", "open files"],
        [
            [i + 1, f"{w['end_s']:.0f}", f"{w['sent']:,}", f"{w['ok']:,}", w["non_2xx"],
             w["transport"], _window_ms(w["p50_ms"]), _window_ms(w["p95_ms"]),
             _window_ms(w["p99_ms"]), _window_ms(w["max_ms"]), f"{w['late']:,}",
             f"{w['rss_mb']:.1f}", f"{w['cpu_percent']:.0f}", w["open_files"]]
            for i, w in enumerate(service["windows"])
        ],
    ).split("\n")  # fmt: skip
    labels = service["label_log"]
    recorded = "?" if labels["recorded"] is None else f"{labels['recorded']:,}"
    out += [
        "",
        f"Latencies count from the moment each request was due; `late`: sent more than 1 ms "
        f"after that by the generator. RSS, the server's CPU share and its open files are "
        f"sampled at each window's end; RSS when ready {service['rss_ready_mb']:.0f} MiB, "
        f"after the last answer {service['rss_end_mb']:.0f} MiB. Label log: "
        f"{labels['posted']:,} labels posted, {recorded} transactions labelled, "
        f"{labels['bytes'] / 2**20:.1f} MiB on disk; audit log "
        f"{service['audit_log_bytes'] / 2**20:.1f} MiB.",
        "",
    ]
    return out


def read_soak(path: Path = SOAK_JSON) -> dict[str, Any] | None:
    """The last soak's record, if there is one."""
    if not path.is_file():
        return None
    soak: dict[str, Any] = json.loads(path.read_text())
    return soak


def tracing_markdown(path: Path = Path("benchmarks/tracing.json")) -> str:
    """The tracing-cost section (``python -m benchmarks.tracing_cost --compare``, a run of
    its own), if it has been run."""
    if not path.is_file():
        return ""
    from benchmarks.tracing_cost import section  # imports the app: only when needed

    return "\n" + "\n".join(section(json.loads(path.read_text())))


def write_markdown(results: dict[str, Any], path: Path, soak: dict[str, Any] | None = None) -> None:
    from benchmarks.record_report import markdown as record_markdown  # make record-bench
    from benchmarks.rules_report import markdown as rules_markdown  # make bench, after this
    from benchmarks.shadow_report import markdown as shadow_markdown  # make shadow-bench

    path.write_text(
        render(results, soak)
        + tracing_markdown()
        + record_markdown()
        + shadow_markdown()
        + rules_markdown()
    )
