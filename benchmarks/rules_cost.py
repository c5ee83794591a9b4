"""What the rules engine costs a scored transaction (issue 27): a 50-rule set (allow and
block lists of 1,000 values, velocity, foreign-online, new-customer and score/amount
escalations, nested all/any/not) evaluated by ``CompiledRuleSet.decide`` on one
transaction (the scalar path, as ``/v1/predict`` runs it) and on batches of 1,000 (the
vectorised path, as ``/v1/predict/batch`` runs it). Prints a markdown table: mean, p50 and
p99 microseconds per call and per transaction, and the share of rows a rule matched::

    python -m benchmarks.rules_cost [--rules 50] [--batch 1000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fraud_model.decisions import DECISIONS, RISK_LEVELS
from fraud_rules import CompiledRuleSet, FieldCatalogue, RuleInputs, parse_rule_set
from training.reporting.markdown import markdown_table

CATEGORIES = ("grocery", "restaurant", "fuel", "jewelry", "electronics", "digital_goods")
FEATURES = ("vel_tx_count_1h", "is_new_customer", "amount_zscore_30d")


def rule_set(rules: int) -> CompiledRuleSet:
    """A deterministic rule set of ``rules`` rules cycling through five realistic shapes."""
    amount = "request.amount"
    body: list[dict[str, Any]] = []
    for i in range(rules):
        shape = i % 5
        if shape == 0:
            stage = "allow" if i == 0 else "block"
            when: dict[str, Any] = {
                "field": "request.customer_id" if i == 0 else "request.terminal_id",
                "in_list": "vip" if i == 0 else f"bad_terminals_{i}",
            }
        elif shape == 1:
            stage, when = "escalate", {"all": [
                {"field": "feature.vel_tx_count_1h", "op": ">=", "value": 8 + i % 4},
                {"any": [
                    {"field": amount, "op": ">", "value": 300 + i},
                    {"not": {"field": "request.channel", "in": ["in_person"]}},
                ]},
            ]}  # fmt: skip
        elif shape == 2:
            stage, when = "escalate", {"all": [
                {"field": "request.is_foreign", "op": "==", "value": 1},
                {"field": "request.channel", "op": "==", "value": "online"},
                {"field": amount, "op": ">", "value": 500 + 10 * i},
            ]}  # fmt: skip
        elif shape == 3:
            stage, when = "escalate", {"all": [
                {"field": "feature.is_new_customer", "op": "==", "value": 1},
                {"field": amount, "op": ">=", "value": 1000 + 10 * i},
            ]}  # fmt: skip
        else:
            stage, when = "escalate", {"all": [
                {"field": "model.score", "op": ">=", "value": 0.5},
                {"field": "request.merchant_category", "in_list": "risky_categories"},
                {"field": "feature.amount_zscore_30d", "op": ">", "value": 3 + i / 50},
            ]}  # fmt: skip
        decision = {"allow": "approve", "block": "decline", "escalate": "step_up"}[stage]
        action = {"decision": decision, "reason": f"RULE_{i}"}
        body.append({"id": f"rule_{i:03d}", "stage": stage, "when": when, "action": action})
    lists = {
        "vip": [f"C{i:06d}" for i in range(0, 100_000, 100)],
        # nine block lists of 100 terminals each (1,000 in all)
        **{
            f"bad_terminals_{i}": [f"T{t:05d}" for t in range(i, 10_000, 100)]
            for i in range(5, rules, 5)
        },
        "risky_categories": ["jewelry", "electronics", "digital_goods"],
    }
    text = json.dumps({"version": "bench", "lists": lists, "rules": body})
    return parse_rule_set(text, FieldCatalogue.for_features(FEATURES))


def transactions(n: int, rng: np.random.Generator) -> tuple[RuleInputs, list[str], list[str]]:
    """n synthetic transactions with the model's decisions and levels."""
    numeric = {
        "request.amount": rng.lognormal(4.0, 1.2, n),
        "request.is_foreign": (rng.random(n) < 0.1).astype(np.float64),
        "feature.vel_tx_count_1h": rng.poisson(1.5, n).astype(np.float64),
        "feature.is_new_customer": (rng.random(n) < 0.05).astype(np.float64),
        "feature.amount_zscore_30d": rng.normal(0.0, 1.5, n),
        "model.score": rng.beta(0.5, 8.0, n),
    }
    text: dict[str, list[str | None]] = {
        "request.customer_id": [f"C{i:06d}" for i in rng.integers(0, 100_000, n)],
        "request.terminal_id": [f"T{i:05d}" for i in rng.integers(0, 10_000, n)],
        "request.channel": list(rng.choice(["in_person", "online"], n)),
        "request.merchant_category": list(rng.choice(CATEGORIES, n)),
    }
    levels = [
        str(RISK_LEVELS[i]) for i in np.searchsorted([0.3, 0.6, 0.85], numeric["model.score"])
    ]
    decisions: list[str] = [DECISIONS[level] for level in levels]  # type: ignore[index]
    return RuleInputs(n=n, numeric=numeric, text=text), decisions, levels


def _time(call: Callable[[], object], seconds: float) -> np.ndarray:
    for _ in range(20):
        call()
    samples = []
    gc.disable()
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return np.asarray(samples, dtype=np.float64) / 1_000.0  # microseconds


def measure(rules: int, batch: int, seconds: float, seed: int = 7) -> list[dict[str, Any]]:
    """One row per case: calls, mean/p50/p99 microseconds per call and per transaction."""
    compiled = rule_set(rules)
    rng = np.random.default_rng(seed)
    rows = []
    for n in (1, batch):
        pool = [transactions(n, rng) for _ in range(16 if n == 1 else 4)]

        turns = itertools.count()

        def call(pool: list[Any] = pool, turn: Iterator[int] = turns) -> object:
            inputs, decisions, levels = pool[next(turn) % len(pool)]
            return compiled.decide(inputs, decisions, levels, "model")

        micros = _time(call, seconds)
        inputs, decisions, levels = transactions(max(n, 2_000), rng)
        matched = compiled.matches(inputs, vectorised=True).any(axis=1).mean()
        rows.append({
            "case": "single transaction (scalar)" if n == 1 else f"batch of {n:,} (vectorised)",
            "rules": rules, "rows": n, "calls": int(micros.size),
            "mean_us": float(micros.mean()), "p50_us": float(np.percentile(micros, 50)),
            "p99_us": float(np.percentile(micros, 99)),
            "mean_us_per_tx": float(micros.mean() / n), "matched_share": float(matched),
        })  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table for BENCHMARKS.md."""
    header = ["Case", "Rules", "Calls", "Mean µs/call", "p50 µs", "p99 µs", "Mean µs/tx",
              "Rows a rule matched"]  # fmt: skip
    body = [
        [r["case"], r["rules"], f"{r['calls']:,}", f"{r['mean_us']:.1f}", f"{r['p50_us']:.1f}",
         f"{r['p99_us']:.1f}", f"{r['mean_us_per_tx']:.2f}", f"{r['matched_share']:.1%}"]
        for r in rows
    ]  # fmt: skip
    return markdown_table(header, body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50, help="rules in the set")
    parser.add_argument("--batch", type=int, default=1000, help="rows per batch call")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    args = parser.parse_args(argv)
    print(markdown(measure(args.rules, args.batch, args.seconds)))


if __name__ == "__main__":
    main()
