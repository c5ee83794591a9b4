"""BENCHMARKS.md from ``benchmarks/results.json``: machine, commands, raw figures, ratios,
and every target of issue 28 judged on the deployed online store (Redis) from the figures
of the same run, the other stores beside; the latency-versus-load curve
(:mod:`benchmarks.latency_plot`); then the soak of ``benchmarks/soak.json`` (``make
soak``, a run of its own) when there is one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.capacity import section as capacity_section
from benchmarks.latency_plot import store_label
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


def store_results(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``results["stores"]``; a results file from before the stores (one ``service`` on
    the workspace's SQLite store) as one store named ``sqlite``."""
    if "stores" in results:
        stores: dict[str, dict[str, Any]] = results["stores"]
        return stores
    if "service" in results:
        return {"sqlite": {"service": results["service"], "inprocess": results.get("inprocess")}}
    return {}


def deployed_store(results: dict[str, Any]) -> str | None:
    """The store the targets are judged on: ``deployed_store`` (Redis), else the first."""
    stores = store_results(results)
    name = results.get("deployed_store")
    if name in stores:
        return str(name)
    return next(iter(stores), None)


# (target, how it is judged from one store's figures); ``None``: not measured.
Judged = tuple[str, bool] | None


def _at(service: dict[str, Any], share: int) -> dict[str, Any] | None:
    return next((level for level in service["open_loop"] if level["share"] == share), None)


def store_targets(
    service: dict[str, Any], naive: dict[str, Any] | None
) -> list[tuple[str, Judged]]:
    """Every target of issue 28 judged on one store's service figures: (target, (measured,
    met)); the naive ratio is this service's saturation over the naive baseline's."""
    rows: list[tuple[str, Judged]] = []
    at75 = _at(service, 75)
    if at75 is None:
        rows.append(("p99 ≤ 10 ms at 75 % of saturation (open loop)", None))
    else:
        on_time = at75.get("p99_on_time_ms")
        extra = ""
        if on_time is not None:
            late = at75["late"]
            extra = f"; {_ms(on_time)} without the {late:,} sent late" if late else "; none late"
        rows.append(
            (
                "p99 ≤ 10 ms at 75 % of saturation (open loop)",
                (
                    f"{_ms(at75['p99_ms'])} at {at75['offered_rps']:,.0f} req/s{extra}",
                    at75["p99_ms"] <= 10 and at75["errors"] == 0,
                ),
            )
        )
    unloaded = service["unloaded"]
    p50, p99 = unloaded["p50_ms"], unloaded["p99_ms"]
    rows.append(("unloaded p50 ≤ 1.5 ms (client side)", (_ms(p50), p50 <= 1.5)))
    rows.append(("unloaded p99 ≤ 4 ms (client side)", (_ms(p99), p99 <= 4)))
    saturation = service["saturation"]["throughput_rps"]
    rows.append(
        (
            "≥ 1,200 req/s on one core at saturation",
            (
                f"{saturation:,.0f} req/s",
                saturation >= 1200 and service["saturation"]["errors"] == 0,
            ),
        )
    )
    big = next((b for b in service["batch"] if b["size"] == 1000), None)
    path = service.get("batch_path")
    endpoint = "" if big is None else f"; the HTTP endpoint {big['tx_per_second']:,.0f} tx/s"
    judged: Judged = None
    if path is not None:  # the target's scope: lookup, assembly, scoring, reasons, encoding
        parity = path["parity"]
        judged = (
            f"{path['tx_per_second']:,.0f} tx/s in process (answers equal to the single "
            f"path: {parity['checked'] - parity['differing']:,} of {parity['checked']:,})"
            + endpoint,
            path["tx_per_second"] >= 50_000 and parity["differing"] == 0,
        )
    elif big is not None:
        judged = (
            f"{big['tx_per_second']:,.0f} tx/s (HTTP endpoint)",
            big["tx_per_second"] >= 50_000,
        )
    rows.append(("batch of 1,000: ≥ 50,000 tx/s per core", judged))
    if naive is not None:
        ratio = saturation / max(naive["saturation"]["throughput_rps"], 1e-9)
        rows.append(("≥ 10× the naive baseline's throughput", (f"{ratio:,.0f}×", ratio >= 10)))
    cold = max(c["ready_seconds"] for c in service["cold_starts"])
    rows.append(
        (
            "cold start to ready ≤ 3 s",
            (f"{cold:.2f} s (worst of {len(service['cold_starts'])})", cold <= 3),
        )
    )
    rss = max(service["rss_ready_mb"], service["rss_after_load_mb"])
    rows.append(("resident memory ≤ 300 MB per worker", (f"{rss:.0f} MiB", rss <= 300)))
    return rows


NAIVE_TARGET = "≥ 10× the naive baseline's throughput"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) on the deployed store for each target this run
    measured; the naive ratio is judged on the baseline's own store (SQLite), like for
    like."""
    return [(name, cells[0], cells[1]) for name, cells, _ in _target_rows(results)]


def _cell(judged: Judged) -> tuple[str, str]:
    return ("not measured", "–") if judged is None else (judged[0], _target(judged[1]))


def _target_rows(
    results: dict[str, Any],
) -> list[tuple[str, tuple[str, str], dict[str, tuple[str, str]]]]:
    """(target, (measured, verdict) it is judged on, every store's (measured, verdict))."""
    stores = store_results(results)
    deployed = deployed_store(results)
    if deployed is None:
        return []
    naive = results.get("naive")
    naive_store = (naive or {}).get("store", "sqlite")
    per_store = {
        name: dict(store_targets(entry["service"], naive)) for name, entry in stores.items()
    }
    rows = []
    for name in per_store[deployed]:
        judged_on = naive_store if name == NAIVE_TARGET and naive_store in per_store else deployed
        cells = {store: _cell(figures[name]) for store, figures in per_store.items()}
        rows.append((name, cells[judged_on], cells))
    return rows


def targets_section(results: dict[str, Any]) -> list[str]:
    """The targets table: judged on the deployed store, the other stores beside."""
    stores = store_results(results)
    deployed = deployed_store(results)
    if deployed is None:
        return []
    others = [name for name in stores if name != deployed]
    role = "deployed" if deployed == results.get("deployed_store") else "judged"
    header = ["target", "verdict", f"{store_label(deployed)} ({role})"]
    header += [store_label(name) for name in others]
    rows = []
    for name, (_, verdict), cells in _target_rows(results):
        row = [name, verdict, f"{cells[deployed][0]} ({cells[deployed][1].strip('*')})"]
        row += [f"{cells[o][0]} ({cells[o][1].strip('*')})" for o in others]
        rows.append(row)
    naive = results.get("naive")
    out = [markdown_table(header, rows), ""]
    out += [
        f"Every verdict is judged on {store_label(deployed)}, "
        + (
            "the deployed online store, with the other stores' figures beside"
            if role == "deployed"
            else "the only store this run measured (the deployed one is Redis)"
        )
        + (
            f"; the naive ratio on {store_label(naive.get('store', 'sqlite'))}, the store the "
            "baseline runs on (like for like)"
            if naive is not None
            else ""
        )
        + ". The 75 % point counts every request from its due time, including any the "
        "load generator sent late; the figure without them is given beside it.",
        "",
    ]
    return out


RUN_HEADER = (
    "load", "req/s", "p50 ms", "p95 ms", "p99 ms", "p99 on time ms", "max ms", "requests",
    "errors", "late",
)  # fmt: skip


def _run_row(name: str, run: dict[str, Any]) -> list[Any]:
    on_time = run.get("p99_on_time_ms")
    return [
        name,
        f"{run['throughput_rps']:,.0f}",
        f"{run['p50_ms']:.2f}",
        f"{run['p95_ms']:.2f}",
        f"{run['p99_ms']:.2f}",
        "–" if on_time is None else f"{on_time:.2f}",
        f"{run['max_ms']:.1f}",
        f"{run['requests']:,}",
        run["errors"],
        run.get("late", 0),
    ]


def _settings_lines(results: dict[str, Any]) -> list[str]:
    settings = results.get("service_settings")
    if settings is None:
        return []
    env = settings["env"]
    shown = ", ".join(
        f"`{k}={env[k]}`"
        for k in (
            "AUDIT_SYNCHRONOUS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_TRACES_EXPORTER", "ADMISSION_SINGLE_LIMIT", "ADMISSION_SINGLE_TARGET_MS",
            "ADMISSION_BATCH_LIMIT", "FEATURE_TIMEOUT_MS", "FEATURE_STORE_SOCKET_TIMEOUT_MS",
            "LOG_LEVEL",
        )
        if k in env
    )  # fmt: skip
    return [
        f"Production settings, from `{settings['source']}` wherever they apply on loopback "
        f"(all of them in `service_settings` of the results): {shown}; velocity push on; "
        f"the deployed rule set ({settings['rules_file']}); the challenger in shadow "
        f"(`CHALLENGER_URI` = the same bundle, a second ensemble scored per answered "
        f"transaction on the same core); spans exported over OTLP/HTTP to a sink at "
        f"{settings['otlp_sink']}; the audit record and the label log on local disk. "
        f"API keys {settings['api_keys']}.",
        "",
    ]


def _store_note(name: str, entry: dict[str, Any]) -> str:
    store = entry.get("store") or {}
    if name == "redis":
        load = store.get("load_seconds")
        return (
            f"Redis {store.get('version', '')}: Debian's `redis-server` on 127.0.0.1, no "
            "persistence, pinned to core 1 with the load generator, so its CPU is not the "
            "service's but the generator shares a core with it; on GKE the store is "
            "Memorystore on other machines, a network hop away (add that round trip). "
            "Loaded from a copy of the workspace's `feature_repo` by the real online-store "
            "job (`feature_repo.online_load.load`)"
            + ("" if load is None else f" in {load:.0f} s")
            + "."
        )
    return "SQLite: the workspace's own Feast online store, a file on local disk."


def service_section(
    name: str, entry: dict[str, Any], deployed: bool, ceiling: float | None
) -> list[str]:
    """One store's service tables: unloaded and saturation, batch, cold start, memory."""
    service = entry["service"]
    title = f"{store_label(name)}{', the deployed store' if deployed else ''}"
    out = [
        f"## The service over HTTP on {title} (one worker, one core)",
        "",
        _store_note(name, entry),
    ]
    ceiling = service.get("generator_ceiling_rps", ceiling)
    out += [
        "",
        (
            ""
            if ceiling is None
            else f"The load generator's own ceiling in this run (against a server that does "
            f"nothing, `benchmarks/static_server.py`): {ceiling:,.0f} req/s; "
        )
        + f"the service's `/healthz` (no scoring, same middleware) answered "
        f"{service['healthz_rps']:,.0f} req/s.",
        "",
    ]
    rows = [_run_row("unloaded: 1 connection, one at a time", service["unloaded"])]
    rows.append(_run_row("saturation: 32 connections, closed loop", service["saturation"]))
    out.append(markdown_table(RUN_HEADER, rows))
    out += ["", "### Batch endpoint", ""]
    out.append(markdown_table(
        ["batch size", "transactions/s", "requests/s", "p50 ms", "p99 ms", "errors"],
        [
            [b["size"], f"{b['tx_per_second']:,.0f}", f"{b['throughput_rps']:,.1f}",
             f"{b['p50_ms']:.1f}", f"{b['p99_ms']:.1f}", b["errors"]]
            for b in service["batch"]
        ],
    ))  # fmt: skip
    out += batch_path_lines(service.get("batch_path"))
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
    degraded = service.get("degraded")
    if degraded is not None:
        out += [degraded_line(degraded, service.get("degraded_before_batches")), ""]
    return out


def _total(value: int | dict[str, int] | None) -> int:
    if value is None:
        return 0
    return value if isinstance(value, int) else sum(value.values())


def _counts(value: int | dict[str, int] | None) -> str:
    if not isinstance(value, dict):
        return f"{_total(value):,}"
    parts = ", ".join(f"{k} {v:,}" for k, v in sorted(value.items()) if v)
    return f"{_total(value):,}" + (f" ({parts})" if parts else "")


def batch_path_lines(path: dict[str, Any] | None) -> list[str]:
    """The vectorised batch path in process (``benchmarks.batch_path``), per stage."""
    if path is None:
        return []
    stages = path["us_per_tx"]
    parity = path["parity"]
    return [
        "",
        f"In process, batches of {path['batch_size']:,} (`benchmarks/batch_path.py`, median "
        f"of {path['rounds']} passes over {path['batches']} batches, the service's own "
        f"objects): **{path['tx_per_second']:,.0f} tx/s**; request parsing, outside the "
        f"target's scope, {path['parse_us_per_tx']:.1f} µs per transaction more. Every "
        f"answer equals the same transaction's scored alone in time order: "
        f"{parity['checked'] - parity['differing']:,} of {parity['checked']:,}.",
        "",
        markdown_table(
            ["stage", "µs per transaction"],
            [[name, f"{us:.1f}"] for name, us in stages.items()]
            + [["total", f"{sum(stages.values()):.1f}"]],
        ),
    ]


def degraded_line(degraded: dict[str, Any], before_batches: dict[str, Any] | None = None) -> str:
    """What the service's own counters said after all the load: answers scored without
    their online features (and how many of them in the batch runs), failed velocity
    pushes, shadow scores shed."""
    misses = degraded.get("feature_misses")
    in_batches = ""
    if before_batches is not None:
        batch = _total(misses) - _total(before_batches.get("feature_misses"))
        in_batches = f", {batch:,} of them in the batch runs"
    return (
        f"From the service's `/metrics` after all the load: transactions scored without "
        f"their online features {_counts(misses)}{in_batches}; velocity pushes failed "
        f"{_counts(degraded.get('velocity_push_failures'))}; shadow scores dropped "
        f"{_counts(degraded.get('shadow_dropped'))}. Such answers are 200s (scored on "
        "defaults, or without the shadow), so they are not in the error counts."
    )


def curve_section(results: dict[str, Any]) -> list[str]:
    """The latency-versus-load SVG and, under it, every store's open-loop levels."""
    stores = store_results(results)
    out = ["## Latency versus load (open loop)", ""]
    plot = results.get("plot")
    if plot:
        out += [f"![Latency versus offered load, p50 and p99 per store]({plot})", ""]
    rows = []
    for name, entry in stores.items():
        for level in entry["service"]["open_loop"]:
            rows.append(
                _run_row(
                    f"{store_label(name)}: {level['share']} % "
                    f"({level['offered_rps']:,.0f} req/s offered)",
                    level,
                )
            )
    out.append(markdown_table(RUN_HEADER, rows))
    out += [
        "",
        "Each level runs for the same time, at a share of that store's own saturation. "
        "Latencies count from the moment each request was due (no coordinated omission). "
        "`late`: requests the generator itself sent more than 1 ms after they were due; "
        "their latency includes the generator's own lag. `p99 on time`: the p99 of the "
        "other requests, the service's tail without the generator's. The two agree when "
        "the generator keeps up.",
        "",
    ]
    return out


def _timings_table(first: str, timings: dict[str, dict[str, float]]) -> str:
    """Median and p99 microseconds per named step."""
    return markdown_table(
        [first, "median µs", "p99 µs"],
        [[k, v["median_us"], v["p99_us"]] for k, v in timings.items()],
    )


def inprocess_section(name: str, inprocess: dict[str, Any]) -> list[str]:
    """One store's per-stage breakdown and the slower alternatives."""
    out = [
        f"## Where a request's time goes on {store_label(name)} (in process, one "
        "transaction at a time)",
        "",
    ]
    out.append(_timings_table("stage", inprocess["stages"]))
    out += [
        "",
        f"Sum of the medians: {inprocess['sum_of_medians_us']:,.0f} µs over "
        f"{inprocess['transactions']:,} transactions. The rest of a request's time is "
        "HTTP, FastAPI, tracing, metrics, logging, the audit record and the shadow. Under "
        "load, single requests that queue together are scored as one group, so these "
        "per-call costs are shared.",
        "",
        "The slower ways the service does not use, on the same transactions:",
        "",
    ]
    out.append(_timings_table("alternative", inprocess["alternatives"]))
    return [*out, ""]


def naive_section(results: dict[str, Any]) -> list[str]:
    """The naive baseline against the service on the same store."""
    naive, stores = results.get("naive"), store_results(results)
    same = (naive or {}).get("store", "sqlite")
    if naive is None or same not in stores:
        return []
    service = stores[same]["service"]
    out = [
        f"## The naive baseline, same run, same core, same requests, same store "
        f"({store_label(same)})",
        "",
    ]
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
        f"{naive['parity_checked']} transactions. The service carries the production "
        "settings above (audit record, tracing, rules, shadow); the baseline none of them.",
        "",
    ]
    return out


def render(results: dict[str, Any], soak: dict[str, Any] | None = None) -> str:
    """The whole page; the soak section at the end when ``soak`` is given."""
    m = results["machine"]
    stores = store_results(results)
    deployed = deployed_store(results)
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
        f"- online stores: {', '.join(store_label(s) for s in stores) or 'none'}"
        + (f"; targets judged on {store_label(deployed)}, the deployed one" if deployed else ""),
        "- commands: `make bench` (= `python -m benchmarks`); the pipeline figures with "
        "`python -m benchmarks --pipeline scratch`",
        "",
    ]
    if deployed is not None:
        out += ["## Targets (issue 28)", ""]
        out += targets_section(results)
        out += capacity_section(results)  # the lead's per-pod capacity model
        out += _settings_lines(results)
        out += curve_section(results)
    ceiling = results.get("generator_ceiling_rps")
    for name, entry in stores.items():
        out += service_section(name, entry, name == deployed, ceiling)
    for name, entry in stores.items():
        if entry.get("inprocess") is not None:
            out += inprocess_section(name, entry["inprocess"])
    out += naive_section(results)
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
    from benchmarks.tail_sources import markdown as tail_markdown  # make tail-bench

    path.write_text(
        render(results, soak)
        + tracing_markdown()
        + record_markdown()
        + shadow_markdown()
        + rules_markdown()
        + tail_markdown()
    )
