"""The latency-versus-load curve of ``make bench``: ``benchmarks/latency_vs_load.svg``.

x: offered load in an open loop, as a share of each store's measured saturation (the
deployed store's requests per second on the top axis, every store's saturation in the
legend); y: client-side latency in ms (log scale), p50 and p99 per store; a horizontal line
at the 10 ms p99 target and a vertical one at 75 % of saturation, where it is judged.

The SVG is deterministic for the same results (fixed ``svg.hashsalt``, no date), so a
rerun that measured the same figures leaves the file unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOT = Path("benchmarks/latency_vs_load.svg")
TARGET_P99_MS = 10.0
TARGET_SHARE = 75
STORE_LABELS = {"redis": "Redis", "sqlite": "SQLite"}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
FLOOR_MS = 0.01  # a log axis cannot show 0


def store_label(name: str) -> str:
    return STORE_LABELS.get(name, name)


def _ms(value: float) -> float:
    return max(float(value), FLOOR_MS)


def write_plot(results: dict[str, Any], path: Path = PLOT) -> Path:
    """Draw every store's open-loop p50 and p99 against the offered load into ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display; before pyplot is imported
    import matplotlib.pyplot as plt

    stores: dict[str, Any] = results["stores"]
    deployed = results.get("deployed_store")
    with plt.rc_context({"svg.hashsalt": "latency-vs-load", "svg.fonttype": "path"}):
        figure, axis = plt.subplots(figsize=(8, 5))
        for colour, (name, entry) in zip(COLOURS, stores.items(), strict=False):
            service = entry["service"]
            levels = sorted(service["open_loop"], key=lambda level: level["share"])
            shares = [level["share"] for level in levels]
            saturation = service["saturation"]["throughput_rps"]
            label = f"{store_label(name)}{' (deployed)' if name == deployed else ''}"
            axis.plot(
                shares,
                [_ms(level["p99_ms"]) for level in levels],
                color=colour,
                marker="o",
                label=f"{label} p99 (saturation {saturation:,.0f} req/s)",
            )
            axis.plot(
                shares,
                [_ms(level["p50_ms"]) for level in levels],
                color=colour,
                marker=".",
                linestyle="--",
                label=f"{label} p50",
            )
        axis.axhline(TARGET_P99_MS, color="black", linewidth=1, linestyle=":")
        axis.axvline(TARGET_SHARE, color="grey", linewidth=1, linestyle=":")
        axis.annotate(
            f"target: p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_SHARE} %",
            (TARGET_SHARE, TARGET_P99_MS),
            textcoords="offset points",
            xytext=(-170, 6),
            fontsize=8,
        )
        axis.set_yscale("log")
        axis.set_xlim(0, 100)
        axis.set_xlabel("offered load, % of the store's measured saturation (open loop)")
        axis.set_ylabel("latency from the due time, ms (log scale)")
        axis.grid(True, which="both", alpha=0.3)
        if deployed in stores:
            rps = stores[deployed]["service"]["saturation"]["throughput_rps"] / 100
            top = axis.secondary_xaxis(
                "top", functions=(lambda x: x * rps, lambda y: y / max(rps, 1e-9))
            )
            top.set_xlabel(f"offered req/s on {store_label(deployed)}")
        axis.legend(fontsize=8, loc="upper left")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
    return path
