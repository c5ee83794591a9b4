"""Fraud rules as data: a validated YAML/JSON rule set compiled to a scalar and a
vectorised evaluator, applied beside the model with an explicit precedence.

Imports only numpy, pydantic, PyYAML and ``fraud_model.decisions``.
"""

from pathlib import Path

from fraud_rules.catalogue import FieldCatalogue
from fraud_rules.engine import (
    SCALAR_MAX_ROWS,
    CompiledRuleSet,
    RuleInputs,
    RuleMeta,
    RuleOutcome,
)
from fraud_rules.load import RuleSetError, load_rule_file, parse_rule_set

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")

__all__ = [
    "DEFAULT_RULES_FILE",
    "SCALAR_MAX_ROWS",
    "CompiledRuleSet",
    "FieldCatalogue",
    "RuleInputs",
    "RuleMeta",
    "RuleOutcome",
    "RuleSetError",
    "load_rule_file",
    "parse_rule_set",
]
