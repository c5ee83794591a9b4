"""Per-pod capacity: one measured number, and every deployment figure derived from it.

``make bench`` measures one pod (one worker on one core) on the deployed online store
(Redis): its saturation rate, and the open-loop latency at 10 to 90 % of it. From those
two measurements alone this module derives

- the HPA's CPU target: the highest measured load share, at most 75 %, whose p99 (the
  requests the generator sent on time) stays within the 10 ms budget, in steps of 5;
- the requests per second one pod carries at that target (saturation x target);
- the replica bounds: ``MIN_REPLICAS`` (one pod per zone), and enough pods at target
  for ``DESIGN_PEAK_RPS``;
- the per-key rate limit of one pod (``RATE_LIMIT_PER_SECOND``): the pod's saturation,
  rounded down to 50, so one runaway caller cannot take more than a whole pod, while the
  main caller (a payment switch sends most traffic under one key) is never throttled
  below what the HPA keeps each pod at; the burst twice that.

``python -m benchmarks.capacity --write`` (the last step of ``make bench``) writes them into
``k8s/base/hpa.yaml``, ``k8s/base/settings.env`` and the marked capacity blocks of
``docs/deploy-gke.md`` and ``README.md``; ``--check`` (and ``tests/deploy/test_capacity.py``)
fails when any of them differs from what ``benchmarks/results.json`` gives.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

P99_BUDGET_MS = 10.0
MAX_TARGET = 75  # the operating point: pods run at three quarters of saturation
MIN_TARGET = 30  # below this, scale out on the load, not the latency: see ``within_budget``
MIN_REPLICAS = 3  # one pod per zone of a regional cluster
DESIGN_PEAK_RPS = 10_000  # the peak the HPA must be able to reach (docs/deploy-gke.md)

RESULTS = Path("benchmarks/results.json")
HPA = Path("k8s/base/hpa.yaml")
SETTINGS_ENV = Path("k8s/base/settings.env")
DEPLOY_DOC = Path("docs/deploy-gke.md")
README = Path("README.md")
BEGIN, END = (
    "<!-- capacity:begin (python -m benchmarks.capacity --write) -->",
    "<!-- capacity:end -->",
)


@dataclass(frozen=True)
class Capacity:
    """What one pod carries, and the deployment figures that follow from it."""

    store: str
    commit: str
    saturation_rps: int  # the one measured number
    budget_share: int | None  # highest measured share (%) with p99 within budget; None: none
    within_budget: bool  # whether the p99 at the HPA target is within budget
    target_utilization: int  # the HPA's averageUtilization (%)
    rps_at_target: int
    min_replicas: int
    max_replicas: int
    rate_limit_per_second: int
    rate_limit_burst: int


def _p99(level: dict[str, Any]) -> float:
    value = level.get("p99_on_time_ms", level["p99_ms"])
    return float(value) if value is not None and not math.isnan(float(value)) else math.inf


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """The capacity figures of a ``make bench`` run (``results.json``) as plain data."""
    store = results.get("deployed_store", "sqlite")
    service = results["stores"][store]["service"] if "stores" in results else results["service"]
    saturation = int(round(service["saturation"]["throughput_rps"]))
    p99 = {int(level["share"]): _p99(level) for level in service["open_loop"]}
    budget = max(
        (share for share, ms in p99.items() if ms <= P99_BUDGET_MS and share <= MAX_TARGET),
        default=None,
    )
    target = max(MIN_TARGET, min(MAX_TARGET, (budget or 0) // 5 * 5))
    # the target is a measured level when the budget held; otherwise say it did not
    within_budget = budget is not None and p99.get(target, math.inf) <= P99_BUDGET_MS
    rps_at_target = saturation * target // 100
    max_replicas = max(MIN_REPLICAS + 1, math.ceil(DESIGN_PEAK_RPS / max(rps_at_target, 1)))
    # one key may take up to a whole pod's capacity: below that the HPA adds pods; a key
    # limited to the target's load would be throttled before CPU scaling could react
    rate = max(50, saturation // 50 * 50)
    return asdict(
        Capacity(
            store=store,
            commit=results.get("machine", {}).get("commit", "unknown"),
            saturation_rps=saturation,
            budget_share=budget,
            within_budget=within_budget,
            target_utilization=target,
            rps_at_target=rps_at_target,
            min_replicas=MIN_REPLICAS,
            max_replicas=max_replicas,
            rate_limit_per_second=rate,
            rate_limit_burst=2 * rate,
        )
    )


def _grouped(n: int) -> str:
    return f"{n:,}"


def sentence(c: dict[str, Any]) -> str:
    """The one-line statement the README, the docs and the manifests quote."""
    budget = (
        f"p99 within {P99_BUDGET_MS:g} ms up to {c['budget_share']} % of it"
        if c["budget_share"] is not None
        else f"p99 over {P99_BUDGET_MS:g} ms at every measured load"
    )
    return (
        f"one pod (one core) saturates at {_grouped(c['saturation_rps'])} req/s on "
        f"{c['store'].capitalize()} ({budget}; `make bench`, commit `{c['commit']}`): the HPA "
        f"targets {c['target_utilization']} % CPU, about {_grouped(c['rps_at_target'])} req/s "
        f"per pod, with {c['min_replicas']} to {c['max_replicas']} replicas"
    )


def section(results: dict[str, Any]) -> list[str]:
    """The "Per-pod capacity" section of BENCHMARKS.md."""
    c = results.get("capacity") or derive(results)
    lines = [
        "## Per-pod capacity (what the deployment is sized from)",
        "",
        f"The one number: **{_grouped(c['saturation_rps'])} req/s** per pod at saturation on "
        f"{c['store'].capitalize()}, the deployed online store. `python -m benchmarks.capacity "
        "--write` derives the rest and writes it into `k8s/base/hpa.yaml`, "
        "`k8s/base/settings.env`, docs/deploy-gke.md and README.md; "
        "`tests/deploy/test_capacity.py` fails when they differ.",
        "",
        "| figure | value | how |",
        "|---|---|---|",
        f"| HPA CPU target | {c['target_utilization']} % | highest measured share ≤ {MAX_TARGET} % "
        f"with p99 ≤ {P99_BUDGET_MS:g} ms (on time), in steps of 5, at least {MIN_TARGET} % |",
        f"| p99 within budget at the target | {'yes' if c['within_budget'] else '**no**'} | "
        "the open-loop level at the target share |",
        f"| req/s per pod at the target | {_grouped(c['rps_at_target'])} | saturation × target |",
        f"| minReplicas | {c['min_replicas']} | one pod per zone |",
        f"| maxReplicas | {c['max_replicas']} | {_grouped(DESIGN_PEAK_RPS)} req/s design peak "
        "÷ req/s per pod at target |",
        f"| RATE_LIMIT_PER_SECOND / BURST | {c['rate_limit_per_second']} / "
        f"{c['rate_limit_burst']} | one key at most a whole pod (its saturation), per pod |",
        "",
    ]
    return lines


def _doc_block(c: dict[str, Any]) -> str:
    return (
        f"{BEGIN}\n**Per-pod capacity:** {sentence(c)}. "
        f"A pod at the target carries about {_grouped(c['rps_at_target'])} req/s, so the "
        f"{c['min_replicas']} minimum replicas carry about "
        f"{_grouped(c['min_replicas'] * c['rps_at_target'])} req/s and the "
        f"{c['max_replicas']} maximum about {_grouped(c['max_replicas'] * c['rps_at_target'])} "
        f"req/s (the design peak is {_grouped(DESIGN_PEAK_RPS)}). Each API key may send "
        f"{c['rate_limit_per_second']} req/s to each pod (burst {c['rate_limit_burst']}).\n{END}"
    )


def _replace_block(text: str, block: str, path: Path) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no capacity block ({BEGIN} ... {END})")
    return pattern.sub(lambda _: block, text)


def _set(text: str, pattern: str, value: str, path: Path) -> str:
    new, count = re.subn(pattern, lambda m: m.group(1) + value, text, flags=re.M)
    if count != 1:
        raise ValueError(f"{path}: expected one match of {pattern!r}, found {count}")
    return new


def rendered(c: dict[str, Any], root: Path = Path()) -> dict[Path, str]:
    """Each file the figures go into, as it should read."""
    hpa = (root / HPA).read_text()
    hpa = _set(hpa, r"^(# Per-pod capacity: ).*$", sentence(c).replace("`", "") + ".", HPA)
    hpa = _set(hpa, r"^(  minReplicas: )\d+$", str(c["min_replicas"]), HPA)
    hpa = _set(hpa, r"^(  maxReplicas: )\d+$", str(c["max_replicas"]), HPA)
    hpa = _set(hpa, r"^(          averageUtilization: )\d+$", str(c["target_utilization"]), HPA)
    env = (root / SETTINGS_ENV).read_text()
    env = _set(env, r"^(RATE_LIMIT_PER_SECOND=)\d+$", str(c["rate_limit_per_second"]), SETTINGS_ENV)
    env = _set(env, r"^(RATE_LIMIT_BURST=)\d+$", str(c["rate_limit_burst"]), SETTINGS_ENV)
    block = _doc_block(c)
    return {
        HPA: hpa,
        SETTINGS_ENV: env,
        DEPLOY_DOC: _replace_block((root / DEPLOY_DOC).read_text(), block, DEPLOY_DOC),
        README: _replace_block((root / README).read_text(), block, README),
    }


def differences(c: dict[str, Any], root: Path = Path()) -> list[str]:
    """The files that do not say what ``c`` says."""
    return [str(p) for p, text in rendered(c, root).items() if (root / p).read_text() != text]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the figures into the files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file differs")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    c = results.get("capacity") or derive(results)
    if args.write:
        for path, text in rendered(c).items():
            path.write_text(text)
        print(sentence(c))
        return
    stale = differences(c)
    if stale:
        sys.exit(f"not what {args.results} gives: {', '.join(stale)} (make bench, or --write)")
    print("capacity figures agree: " + sentence(c))


if __name__ == "__main__":
    main()
