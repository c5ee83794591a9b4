"""fraud_rules stands only on fraud_model (and numpy, pydantic, PyYAML)."""

from __future__ import annotations

from pathlib import Path

from tests.test_architecture import _tree, graph


def test_fraud_rules_may_import_fraud_model_only(tmp_path: Path) -> None:
    files = {
        "fraud_model/__init__.py": "",
        "fraud_model/decisions.py": "",
        "fraud_rules/__init__.py": "",
        "fraud_rules/engine.py": "import numpy\nfrom fraud_model.decisions import DECISIONS\n",
        "app/__init__.py": "",
        "app/rules.py": "from fraud_rules.engine import CompiledRuleSet\n",
    }
    root = _tree(tmp_path, files)
    assert graph.violations(root) == []
    (root / "fraud_rules/load.py").write_text("from app import rules\n")
    (broken,) = graph.violations(root)
    assert "fraud_rules stands only on fraud_model" in broken
