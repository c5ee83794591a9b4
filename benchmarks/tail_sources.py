"""Where the latency tail comes from: the production configuration, one part off at a time
(issue 28).

    python -m benchmarks.tail_sources [--seconds 8] [--shares 0.1 0.5 0.75]
        [--out benchmarks/tail_sources.json]

The service (``python -m app``, one worker, pinned to core 0, the load generator on
core 1) runs with the deployed settings (:func:`benchmarks.harness.production_env`: the
audit record fsynced per commit, velocity push, the rule set, the challenger in shadow,
10 % of traces exported over OTLP to a sink process, the dashboard's live window, INFO
logs with the access log), then with exactly one of those parts switched off, and once
with all of them off. Each variant: a warm-up, ``--unloaded`` requests one at a time
(client-side p50/p99 and the server process's CPU per request, all its threads, from
/proc), a closed-loop saturation on 32 connections, and an open loop at each ``--shares``
of the *production* variant's saturation (the same offered rates for every variant),
latency from the due time. The workspace's SQLite online store serves the features in
every variant: what is compared is the service's own work, not the store.
The record goes to ``--out`` and its section into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import loadgen
from benchmarks.harness import (
    HOST,
    compile_service,
    generator_gc_paused,
    pin,
    production_env,
    request_bodies,
    start_otlp_sink,
    start_service,
    unpin,
    write_rules_file,
)
from benchmarks.records import add_workspace_arguments, replace_section, saved_section, stamped
from benchmarks.server import free_port

OUT = Path("benchmarks/tail_sources.json")
TITLE = "## Where the tail comes from: production parts switched off one at a time (issue 28)"
PRODUCTION = "production"
# About the gap between requests at 10 % of saturation: the pause of the paced runs.
PAUSE_S = 0.018
SCORER_PAUSES = (0.0, 0.001, 0.005, PAUSE_S)
ALL_OFF = "all of these off"
# Each part of the deployed configuration, and the settings that switch it off.
PARTS: dict[str, dict[str, str | None]] = {
    "no challenger in shadow": {"CHALLENGER_URI": None},
    "no trace export": {"OTEL_TRACES_EXPORTER": "none"},
    "audit record not fsynced per commit": {"AUDIT_SYNCHRONOUS": "NORMAL"},
    "no velocity push": {"VELOCITY_PUSH": "false"},
    "no dashboard live window": {"DASHBOARD_ENABLED": "false"},
    "no access log (LOG_LEVEL=WARNING)": {"LOG_LEVEL": "WARNING"},
}


@dataclass
class Workload:
    """What every variant shares: interpreter, artifacts, requests, load and durations."""

    python: Path
    bundle: Path
    feature_repo: Path
    bodies: list[bytes]
    seconds: float
    unloaded: int
    shares: tuple[float, ...]
    state: Path


def variants() -> dict[str, dict[str, str | None]]:
    """Production, each part off alone, then all of them off together."""
    every: dict[str, str | None] = {}
    for overrides in PARTS.values():
        every |= overrides
    return {PRODUCTION: {}, **PARTS, ALL_OFF: every}


def _state(work: Workload, name: str) -> Path:
    """The variant's own directory: its logs, audit record and rule file."""
    return work.state / name.replace(" ", "-")


def environment(
    work: Workload, port: int, name: str, overrides: dict[str, str | None], sink_port: int
) -> dict[str, str]:
    """``production_env`` for this variant, with ``overrides`` applied (None: unset)."""
    state = _state(work, name)
    rules = write_rules_file(state)
    env = production_env(port, state, work.bundle, rules, sink_port)
    env["FEATURE_REPO"] = str(work.feature_repo)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


async def _measure(
    port: int,
    requests: list[bytes],
    work: Workload,
    rates: list[float] | None,
    cpu: Callable[[], float],
) -> dict[str, Any]:
    await loadgen.closed_loop(HOST, port, requests, 8, 3.0)  # warm-up
    before = cpu()
    unloaded = await loadgen.one_by_one(HOST, port, requests, work.unloaded)
    cpu_ms = (cpu() - before) * 1000 / max(unloaded.count, 1)
    paced = await loadgen.one_by_one(HOST, port, requests, work.unloaded // 3, PAUSE_S)
    saturation = await loadgen.closed_loop(HOST, port, requests, 32, work.seconds)
    offered = rates if rates is not None else [s * saturation.throughput for s in work.shares]
    levels = []
    for share, rate in zip(work.shares, offered, strict=True):
        run = await loadgen.open_loop(HOST, port, requests, rate, work.seconds)
        levels.append({"share": share, "offered_rps": round(rate, 1), **run.summary()})
    return {
        "unloaded": unloaded.summary(),
        "cpu_ms_per_request": round(cpu_ms, 3),
        "paced": paced.summary(),
        "saturation": saturation.summary(),
        "open_loop": levels,
    }


def variant(
    work: Workload,
    name: str,
    overrides: dict[str, str | None],
    sink_port: int,
    rates: list[float] | None,
) -> dict[str, Any]:
    """One service with ``overrides``: its unloaded, saturation and open-loop figures."""
    port = free_port()
    env = environment(work, port, name, overrides, sink_port)
    server = start_service(work.python, port, env, {0}, _state(work, name) / "app.log")
    pin({1})
    try:
        with generator_gc_paused():
            out = asyncio.run(
                _measure(
                    port,
                    loadgen.encode_requests(HOST, port, "/v1/predict", work.bodies),
                    work,
                    rates,
                    server.cpu_seconds,
                )
            )
    finally:
        unpin()
        server.stop()
    return {"overrides": overrides, "ready_seconds": round(server.ready_seconds, 3), **out}


def _wait(seconds: float, busy: bool) -> None:
    if busy:
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass
    elif seconds > 0:
        time.sleep(seconds)


def scorer_after_pauses(bundle: Path, calls: int = 300) -> list[dict[str, float]]:
    """The ensemble alone (``EnsembleScorer.score``, one row, in this process pinned to
    core 0): p50/p99 µs per call with each of :data:`SCORER_PAUSES` slept between calls,
    then :data:`PAUSE_S` busy-waited. No I/O, no other thread: what a pause alone does to
    the next call on this machine."""
    import numpy as np

    from fraud_model.bundle import load_bundle
    from fraud_model.scorer import EnsembleScorer

    scorer = EnsembleScorer(load_bundle(bundle))
    fill = np.asarray(scorer.bundle.fill_values, dtype=np.float64)
    noise = np.random.default_rng(0).standard_normal((100, fill.size))
    rows = [(fill * (1 + 0.1 * noise[i]))[None, :] for i in range(100)]
    out = []
    pin({0})
    try:
        for pause, busy in [(p, False) for p in SCORER_PAUSES] + [(PAUSE_S, True)]:
            times = []
            for i in range(calls):
                began = time.perf_counter()
                scorer.score(rows[i % len(rows)])
                times.append(time.perf_counter() - began)
                _wait(pause, busy)
            micros = np.asarray(times) * 1e6
            out.append(
                {
                    "pause_ms": pause * 1000,
                    "busy_wait": busy,
                    "p50_us": round(float(np.percentile(micros, 50)), 1),
                    "p99_us": round(float(np.percentile(micros, 99)), 1),
                }
            )
    finally:
        unpin()
    return out


def run(work: Workload, only: list[str] | None = None) -> dict[str, Any]:
    """Production first (its saturation sets the open-loop rates), then the others."""
    compile_service(work.python)
    scorer = scorer_after_pauses(work.bundle)
    sink_port = free_port()
    sink = start_otlp_sink(sink_port, {1}, work.state / "otlp-sink.log")
    try:
        chosen = variants()
        results = {PRODUCTION: variant(work, PRODUCTION, {}, sink_port, None)}
        rates = [level["offered_rps"] for level in results[PRODUCTION]["open_loop"]]
        for name, overrides in chosen.items():
            if name != PRODUCTION and (only is None or name in only):
                results[name] = variant(work, name, overrides, sink_port, rates)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return {
        "settings": {
            "seconds": work.seconds,
            "unloaded_requests": work.unloaded,
            "shares": list(work.shares),
            "bundle": str(work.bundle),
            "feature_repo": str(work.feature_repo),
        },
        "variants": results,
        "scorer_after_pauses": scorer,
    }


def table(record: dict[str, Any]) -> str:
    """One row per variant: CPU per request, unloaded, saturation and each open-loop p99."""
    shares = record["settings"]["shares"]
    production = record["variants"][PRODUCTION]
    head = (
        "| variant | CPU ms/request | unloaded p50 ms | unloaded p99 ms | saturation req/s | "
        + " | ".join(
            f"p50 / p99 ms at {level['offered_rps']:.0f} req/s ({share:.0%})"
            for share, level in zip(shares, production["open_loop"], strict=True)
        )
        + " | shed at the highest |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, v in record["variants"].items():
        levels = " | ".join(f"{lv['p50_ms']:.1f} / {lv['p99_ms']:.1f}" for lv in v["open_loop"])
        rows.append(
            f"| {name} | {v['cpu_ms_per_request']:.2f} | {v['unloaded']['p50_ms']:.2f} | "
            f"{v['unloaded']['p99_ms']:.2f} | {v['saturation']['throughput_rps']:.0f} | "
            f"{levels} | {v['open_loop'][-1]['errors']} |"
        )
    return "\n".join(rows)


def pause_table(record: dict[str, Any]) -> str:
    """Back to back against an answer-then-pause rhythm: over HTTP per variant, and the
    ensemble alone in process."""
    pause_ms = PAUSE_S * 1000
    rows = [
        f"| what | back to back p50 / p99 | {pause_ms:g} ms pause p50 / p99 |",
        "|---|---|---|",
    ]
    for name, v in record["variants"].items():
        hot, paced = v["unloaded"], v["paced"]
        rows.append(
            f"| HTTP, {name} (ms) | {hot['p50_ms']:.2f} / {hot['p99_ms']:.2f} | "
            f"{paced['p50_ms']:.2f} / {paced['p99_ms']:.2f} |"
        )
    slept = {
        round(p["pause_ms"], 3): p for p in record["scorer_after_pauses"] if not p["busy_wait"]
    }
    busy = [p for p in record["scorer_after_pauses"] if p["busy_wait"]]
    hot, cold = slept[0.0], slept[round(pause_ms, 3)]
    others = [
        f"{p['pause_ms']:g} ms pause {p['p50_us']:.0f} / {p['p99_us']:.0f}"
        for key, p in slept.items()
        if key not in (0.0, round(pause_ms, 3))
    ] + [f"{p['pause_ms']:g} ms busy-wait {p['p50_us']:.0f} / {p['p99_us']:.0f}" for p in busy]
    rows.append(
        f"| the ensemble alone, in process, one row, µs ({'; '.join(others)}) | "
        f"{hot['p50_us']:.0f} / {hot['p99_us']:.0f} | {cold['p50_us']:.0f} / {cold['p99_us']:.0f} |"
    )
    return "\n".join(rows)


def section(record: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section."""
    m, s = record["machine"], record["settings"]
    load = record["load_average"]
    return [
        TITLE,
        "",
        f"`{record['command']}` ([`{OUT}`]({OUT})), {m['date']}, commit `{m['commit']}`, "
        f"{m['cores']} cores ({m['cpu']}) shared with other work (load average "
        f"{load['before']:.1f} before, {load['after']:.1f} after).",
        "",
        "The service (`python -m app`, one worker pinned to core 0, the generator on core 1) "
        "with the deployed settings, then with one part switched off at a time, then with "
        "all of them off; the workspace's SQLite online store in every variant. *CPU "
        f"ms/request*: the server process's CPU (all threads) over {s['unloaded_requests']:,} "
        "requests sent one at a time. Saturation: closed loop on 32 connections. The open "
        "loops run at shares of the production variant's saturation, the same offered "
        f"rates for every variant, {s['seconds']:g} s each, latency from the due time; *shed*: "
        "the answers at the highest rate that were not 2xx (fast 503s of load shedding).",
        "",
        table(record),
        "",
        "**A pause alone slows the next request on this machine.** The same requests one "
        f"at a time, back to back and with a {PAUSE_S * 1000:g} ms pause after each answer "
        "(about the gap at 10 % of saturation), and the ensemble alone in process with no "
        "I/O and no other thread: the first work after a pause runs several times slower "
        "(the core's caches and predictors hold other work's state by then; on this "
        "shared virtual machine, as the busy-wait shows, whether the core slept or not). That, "
        "not queueing, is why the open loop's p50 at 10 % is above the back-to-back p50.",
        "",
        pause_table(record),
        "",
    ]


def markdown(path: Path = OUT) -> str:
    """The section for ``make bench``'s report, if this benchmark has been run."""
    return saved_section(path, section)


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--seconds", type=float, default=8.0, help="per load level")
    parser.add_argument("--unloaded", type=int, default=1000, help="requests one at a time")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.5, 0.75])
    parser.add_argument("--only", nargs="+", choices=list(PARTS) + [ALL_OFF])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    bodies = [orjson.dumps(b) for b in request_bodies(args.data, args.transactions)]
    work = Workload(
        args.serve_python, args.bundle.resolve(), args.feature_repo.resolve(), bodies,
        args.seconds, args.unloaded, tuple(args.shares),
        Path(tempfile.mkdtemp(prefix="tail-sources-")),
    )  # fmt: skip
    record = stamped("benchmarks.tail_sources", argv, lambda: run(work, args.only))
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    replace_section(args.markdown, TITLE, section(record))
    log(table(record))
    log(f"wrote {args.out} and {args.markdown}; the services' logs are in {work.state}")


if __name__ == "__main__":
    main()
