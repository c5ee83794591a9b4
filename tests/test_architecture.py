"""The layering of docs/architecture.md holds: who may import whom, checked on the source.

``tools/import_graph.py`` reads every module's imports (deferred ones included); these tests
pin its rules on small made-up trees, then run them on the repository itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools/import_graph.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


graph = _load_tool()


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python -m training.train\n"
        "  evaluate:\n    cmd: python -m training.evaluate\n"
    )
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_relative_and_deferred_imports_are_edges(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/api/__init__.py": "",
            "app/api/routes.py": "from ..core import config\nfrom . import deps\n",
            "app/api/deps.py": "def f():\n    import fraud_model.scorer\n",
            "app/core/__init__.py": "",
            "app/core/config.py": "import os\n",
            "fraud_model/__init__.py": "",
            "fraud_model/scorer.py": "import numpy\n",
        },
    )
    found = {(e.source, e.target) for e in graph.edges(root)}
    assert found == {
        ("app.api.routes", "app.core.config"),
        ("app.api.routes", "app.api.deps"),
        ("app.api.deps", "fraud_model.scorer"),
    }
    table = graph.summary(root)
    assert table["app"] == {"modules": 6, "internal": 2, "-> fraud_model": 1}


@pytest.mark.parametrize(
    ("source", "text", "rule"),
    [
        (
            "training/train.py",
            "from app.schemas import X\n",
            "training does not import the service",
        ),
        (
            "training/evaluate.py",
            "from training.train import fit\n",
            "no stage imports another stage",
        ),
        ("fraud_model/scorer.py", "import training.train\n", "fraud_model stands on nothing"),
        ("app/main.py", "from benchmarks import loadgen\n", "the service imports only itself"),
        ("tools/shots.py", "from tests.serving import as_request\n", "tools do not import test"),
    ],
)
def test_each_rule_catches_its_violation(tmp_path: Path, source: str, text: str, rule: str) -> None:
    root = _tree(
        tmp_path,
        {
            "training/__init__.py": "",
            "training/train.py": "",
            "training/evaluate.py": "",
            "app/__init__.py": "",
            "app/schemas.py": "",
            "app/main.py": "",
            "fraud_model/__init__.py": "",
            "fraud_model/scorer.py": "",
            "benchmarks/__init__.py": "",
            "benchmarks/loadgen.py": "",
            "tests/__init__.py": "",
            "tests/serving.py": "",
        },
    )
    assert graph.violations(root) == []
    (root / source).parent.mkdir(exist_ok=True)
    (root / source).write_text(text)
    broken = graph.violations(root)
    assert len(broken) == 1 and rule in broken[0], broken


def test_a_stage_may_import_a_library_package(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "training/__init__.py": "",
            "training/train.py": "from training.modelling.fit import fit\n",
            "training/evaluate.py": "from training.modelling import fit\n",
            "training/modelling/__init__.py": "",
            "training/modelling/fit.py": "",
        },
    )
    assert graph.violations(root) == []


def test_the_repository_keeps_its_layers() -> None:
    assert graph.violations(ROOT) == []


def test_the_service_package_holds_no_client_of_the_service() -> None:
    """Load, replay and benchmark clients live in benchmarks/, not in the serving image."""
    assert not (ROOT / "app/replay").exists()
    clients = [
        path.relative_to(ROOT)
        for path in (ROOT / "app").rglob("*.py")
        if "open_connection(" in path.read_text() or "import httpx" in path.read_text()
    ]
    assert clients == []


def test_training_top_level_is_the_pipeline_stages() -> None:
    """Every module directly under training/ is a dvc.yaml stage, `external`, `benchmark` or
    `promote`."""
    stages = {name.removeprefix("training.") for name in graph.stage_modules(ROOT)}
    modules = {p.stem for p in (ROOT / "training").glob("*.py")} - {"__init__"}
    assert modules == stages


def test_the_architecture_page_shows_the_current_package_graph() -> None:
    """docs/architecture.md's diagram is the code's: regenerate it with
    ``python tools/import_graph.py --mermaid`` when a package gains or loses a dependency."""
    page = (ROOT / "docs/architecture.md").read_text()
    block = page.split("<!-- import-graph:start -->", 1)[1].split("<!-- import-graph:end -->")[0]
    assert block.strip() == f"```mermaid\n{graph.mermaid(ROOT)}\n```"
