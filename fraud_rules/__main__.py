"""``python -m fraud_rules check FILE [--features NAMES_FILE]``: validate a rule set offline
(CI, analysts). Exit 0 and a summary when it is valid, 2 and every problem when not.
Without ``--features`` any ``feature.<name>`` is accepted; NAMES_FILE holds the
FeatureService's feature names, one a line (``#`` starts a comment)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from fraud_rules.catalogue import FieldCatalogue
from fraud_rules.load import RuleSetError, load_rule_file


def _feature_names(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fraud_rules", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a rule-set file (YAML or JSON)")
    check.add_argument("file", type=Path, help="the rule-set file")
    check.add_argument(
        "--features", type=Path, help="file of feature names, one a line (default: any)"
    )
    args = parser.parse_args(argv)
    try:
        names = _feature_names(args.features) if args.features else None
        rule_set = load_rule_file(args.file, FieldCatalogue.for_features(names))
    except OSError as exc:
        print(f"{exc.filename or args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except RuleSetError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    stages = Counter(rule.stage for rule in rule_set.rules)
    enabled = sum(rule.enabled for rule in rule_set.rules)
    print(
        f"{args.file}: OK, version {rule_set.version}: {len(rule_set.rules)} rules "
        f"({enabled} enabled; {', '.join(f'{n} {s}' for s, n in sorted(stages.items()))}), "
        f"{len(rule_set.lists)} lists"
        + ("" if names is not None else " (feature names not checked: no --features)")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
