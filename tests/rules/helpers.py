"""Small builders shared by the rules tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fraud_rules import CompiledRuleSet, FieldCatalogue, RuleInputs, parse_rule_set

FEATURES = ("vel_tx_count_1h", "customer_tx_count_30d", "is_new_customer")
CATALOGUE = FieldCatalogue.for_features(FEATURES)


def compile_rules(rules: str, lists: str = "{}", version: str = "t.1") -> CompiledRuleSet:
    """A rule set from YAML rule entries (a flow list or a block)."""
    return parse_rule_set(f"version: '{version}'\nlists: {lists}\nrules: {rules}\n", CATALOGUE)


def inputs(
    numeric: dict[str, Sequence[float]] | None = None,
    text: dict[str, Sequence[str | None]] | None = None,
) -> RuleInputs:
    numeric = numeric or {}
    text = text or {}
    n = len(next(iter([*numeric.values(), *text.values()])))
    return RuleInputs(
        n=n,
        numeric={k: np.asarray(v, dtype=np.float64) for k, v in numeric.items()},
        text=dict(text),
    )
