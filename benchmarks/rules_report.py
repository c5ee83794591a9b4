"""BENCHMARKS.md's "Rule evaluation cost" section: :mod:`benchmarks.rules_cost` run, its
record kept in ``benchmarks/rules_cost.json`` and its section written into BENCHMARKS.md
(``make bench`` runs it after the service's benchmarks; its report keeps the section)::

    python -m benchmarks.rules_report [--rules 50] [--batch 1000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.records import replace_section, saved_section, stamped

RULES_JSON = Path("benchmarks/rules_cost.json")
TITLE = "## Rule evaluation cost (issue 27)"


def section(record: dict[str, Any]) -> list[str]:
    """The section's lines: title, how it was run, the table."""
    from benchmarks.rules_cost import markdown as table  # imports fraud_rules: when needed

    m, s, load = record["machine"], record["settings"], record["load_average"]
    return [
        TITLE,
        "",
        f"`{record['command']}` ([`{RULES_JSON}`]({RULES_JSON})), {m['date']}, commit "
        f"`{m['commit']}`, {m['cores']} cores ({m['cpu']}) shared with other work (load "
        f"average {load['before']:.1f} before, {load['after']:.1f} after).",
        "",
        f"`CompiledRuleSet.decide` in process on a {s['rules']}-rule set (allow and block "
        "lists, velocity, foreign-online, new-customer and score/amount escalations, nested "
        "all/any/not): one transaction per call (the scalar evaluator, as `/v1/predict` "
        f"runs it) and {s['batch']:,} per call (the vectorised evaluator, as "
        f"`/v1/predict/batch` runs it), {s['seconds']:g} s of calls per case after a "
        "warm-up, garbage collection off while timed.",
        "",
        table(record["rows"]),
        "",
    ]


def markdown(path: Path = RULES_JSON) -> str:
    """The section for ``make bench``'s report, if the benchmark has been run."""
    return saved_section(path, section)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.rules_cost import markdown as table
    from benchmarks.rules_cost import measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50, help="rules in the set")
    parser.add_argument("--batch", type=int, default=1000, help="rows per batch call")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    parser.add_argument("--out", type=Path, default=RULES_JSON)
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    record = stamped(
        "benchmarks.rules_report",
        argv,
        lambda: {
            "settings": {"rules": args.rules, "batch": args.batch, "seconds": args.seconds},
            "rows": measure(args.rules, args.batch, args.seconds),
        },
    )
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    replace_section(args.markdown, TITLE, section(record))
    print(table(record["rows"]))
    print(f"wrote {args.out} and {args.markdown}")


if __name__ == "__main__":
    main()
