"""The cost of the edge protocol: the same service on two HTTP stacks, measured alike.

``python -m app`` runs uvicorn's pure-Python h11 parser under the edge limits
(:class:`app.server.http_protocol.EdgeProtocol`) on uvloop, chosen because memory stays
flat under floods of refused requests (``benchmarks/edge_floods.py``). Before issue 22 it
ran uvicorn's httptools parser on uvloop (:mod:`benchmarks.previous_stack`). Each stack is
started once with the same environment, bundle and core, and measured the same way:
unloaded latency, saturation (32 connections, closed loop), open-loop latency at the same
fixed rates for both, and resident memory when ready and after the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.harness import HOST, generator_gc_paused, start_service
from benchmarks.server import Server, start
from training.reporting.markdown import markdown_table

# (name, what runs, command after the interpreter); the first sets the rates when none given
STACKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("edge", "`python -m app`: h11 under the edge limits, uvloop", ("-m", "app")),
    (
        "httptools",
        "`python -m benchmarks.previous_stack`: httptools, uvloop (before issue 22)",
        ("-m", "benchmarks.previous_stack"),
    ),
)
SHARES = (25, 50, 75)  # % of the first stack's saturation, when no rates are given


async def measure_stack(
    server: Server, singles: Sequence[bytes], rates: Sequence[float], seconds: float
) -> dict[str, Any]:
    """Unloaded, saturation, open loop at each of ``rates`` (25/50/75 % of this stack's own
    saturation when empty), memory when ready and after."""
    predict = loadgen.encode_requests(HOST, server.port, "/v1/predict", list(singles))
    out: dict[str, Any] = {
        "ready_seconds": round(server.ready_seconds, 3),
        "rss_ready_mb": round(server.rss_mb(), 1),
    }
    await loadgen.closed_loop(HOST, server.port, predict, 8, min(seconds, 3.0))  # warm-up
    unloaded = await loadgen.one_by_one(HOST, server.port, predict, int(200 * seconds))
    out["unloaded"] = unloaded.summary()
    saturation = await loadgen.closed_loop(HOST, server.port, predict, 32, seconds)
    out["saturation"] = {"connections": 32, **saturation.summary()}
    levels = list(rates) or [saturation.throughput * share / 100 for share in SHARES]
    out["open_loop"] = []
    for rate in levels:
        run = await loadgen.open_loop(HOST, server.port, predict, rate, seconds)
        out["open_loop"].append({"offered_rps": round(rate, 1), **run.summary()})
    out["rss_after_load_mb"] = round(server.rss_mb(), 1)
    return out


def run_protocols(
    python: Path,
    port: int,
    env: dict[str, str],
    cores: set[int] | None,
    singles: Sequence[bytes],
    seconds: float,
    rates: Sequence[float],
    logs: Path,
) -> dict[str, Any]:
    """Each stack of :data:`STACKS` in turn on ``port``; the rates the first one used are
    offered to the others."""
    stacks: list[dict[str, Any]] = []
    for name, what, command in STACKS:
        log = logs / f"protocol-{name}.log"
        if command == ("-m", "app"):
            server = start_service(python, port, env, cores, log)
        else:
            server = start([str(python), *command], port, env, cores, log)
        try:
            with generator_gc_paused():
                figures = asyncio.run(measure_stack(server, singles, rates, seconds))
        finally:
            server.stop()
        rates = rates or [level["offered_rps"] for level in figures["open_loop"]]
        stacks.append({"name": name, "runs": what, **figures})
    return {"seconds_per_level": seconds, "rates_rps": list(rates), "stacks": stacks}


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base > 0 else "–"


def section(protocol: dict[str, Any], same_run: bool = True) -> list[str]:
    """BENCHMARKS.md's protocol comparison: one column per stack, the first's ratios to the
    second (below 1× for throughput, above 1× for latency means the first is slower)."""
    stacks = protocol["stacks"]
    first, second = stacks[0], stacks[1]
    out = ["## HTTP protocol: the edge protocol against httptools (issue 22)", ""]
    where = (
        "Measured in this run"
        if same_run
        else f"Measured in a run of its own (`{protocol['command']}`, commit "
        f"`{protocol['machine']['commit']}`, {protocol['machine']['date']}, bundle "
        f"`{protocol['bundle']}`, feature repository `{protocol['feature_repo']}`)"
    )
    out += [
        f"{where}: the same service, settings, requests and core, started once per stack; "
        f"{protocol['seconds_per_level']:g} s per load level; open-loop rates fixed for both "
        f"({', '.join(f'{r:,.0f}' for r in protocol['rates_rps'])} req/s).",
        "",
        *(f"- **{s['name']}**: {s['runs']}" for s in stacks),
        "",
    ]
    rows: list[list[str]] = []

    def add(label: str, key: str, fmt: str, ratio: bool = True) -> None:
        a, b = (_pick(s, key) for s in (first, second))
        rows.append([label, format(a, fmt), format(b, fmt), _ratio(a, b) if ratio else ""])

    add("saturation req/s (32 connections)", "saturation.throughput_rps", ",.0f")
    add("saturation p99 ms", "saturation.p99_ms", ".2f")
    add("unloaded p50 ms", "unloaded.p50_ms", ".2f")
    add("unloaded p99 ms", "unloaded.p99_ms", ".2f")
    for i, rate in enumerate(protocol["rates_rps"]):
        for q in ("p50", "p99"):
            add(f"open loop {rate:,.0f} req/s: {q} ms", f"open_loop.{i}.{q}_ms", ".2f")
    add("RSS when ready MiB", "rss_ready_mb", ".0f", ratio=False)
    add("RSS after the load MiB", "rss_after_load_mb", ".0f", ratio=False)
    header = ["measure", first["name"], second["name"], f"{first['name']} / {second['name']}"]
    out += markdown_table(header, rows).split("\n")
    failed = {
        s["name"]: s["saturation"]["errors"] + sum(level["errors"] for level in s["open_loop"])
        for s in stacks
    }
    out += [
        "",
        "Failed requests: "
        + ", ".join(f"{name} {count:,}" for name, count in failed.items())
        + ". Open-loop latencies count from the moment each request was due.",
        "",
    ]
    return out


def _pick(stack: dict[str, Any], key: str) -> float:
    value: Any = stack
    for part in key.split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    return float(value)
