"""The project's import graph: modules and edges per top-level package, and the layering rules.

``python tools/import_graph.py`` prints, for each top-level package, how many modules it
has, how many import edges stay inside it and how many go to each other package (imports
inside functions count: a deferred import is still a dependency). ``--edges`` lists the
cross-package edges module by module; ``--json`` prints the summary as JSON; ``--mermaid``
prints the package diagram that docs/architecture.md shows. ``--check``
exits 1 and names the offending imports when a layering rule of docs/architecture.md
breaks (``tests/test_architecture.py`` runs the same rules).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "app",
    "fraud_model",
    "fraud_rules",
    "system_of_record",
    "training",
    "benchmarks",
    "feature_repo",
    "tools",
    "tests",
)
TOP_MODULES = ("locustfile",)


@dataclass(frozen=True)
class Edge:
    """``source`` (a module) imports ``target`` (a module or package of the project)."""

    source: str
    target: str
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    """``training/train.py`` -> ``training.train``; ``app/api/__init__.py`` -> ``app.api``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every Python module of the project's packages and top-level scripts, by name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "node_modules" not in path.parts:
                found[module_name(path, root)] = path
    for name in TOP_MODULES:
        if (root / f"{name}.py").is_file():
            found[name] = root / f"{name}.py"
    return found


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES + TOP_MODULES


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """The project imports of one module (absolute and relative), one edge per name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_project(alias.name):
                    yield Edge(source, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(source, is_package, node)
            if not _is_project(target):
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                yield Edge(source, child if child in modules else target, node.lineno)


def edges(root: Path = ROOT) -> list[Edge]:
    """Every project import edge, self-imports left out."""
    modules = project_modules(root)
    found = []
    for name, path in modules.items():
        found.extend(e for e in imports_of(name, path, modules) if e.target != name)
    return found


def package_of(module: str) -> str:
    return module.split(".")[0]


def summary(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Per top-level package: ``modules``, ``internal`` edges and edges to each other package."""
    modules = project_modules(root)
    table: dict[str, Counter[str]] = {}
    for name in modules:
        table.setdefault(package_of(name), Counter())["modules"] += 1
    for edge in {(e.source, e.target) for e in edges(root)}:
        source, target = package_of(edge[0]), package_of(edge[1])
        table[source]["internal" if source == target else f"-> {target}"] += 1
    return {package: dict(counts) for package, counts in sorted(table.items())}


# Training stages: the modules dvc.yaml runs (`python -m training.<stage>`), plus `external`,
# `benchmark` and `promote` (it reads the live registry and record, so it is no DVC stage).
def stage_modules(root: Path = ROOT) -> set[str]:
    """``training.<stage>`` for every ``cmd: python -m training.<stage>`` of dvc.yaml."""
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    stages = {
        line.split("python -m ", 1)[1].split()[0]
        for line in text.splitlines()
        if "python -m training." in line
    }
    return stages | {"training.external", "training.benchmark", "training.promote"}


SERVICE_IMPORTS = ("app", "fraud_model", "fraud_rules", "system_of_record", "feature_repo")
PRODUCT = ("app", "training", "fraud_model", "fraud_rules", "system_of_record")


def violations(root: Path = ROOT) -> list[str]:
    """The imports that break the layering rules, as ``file:line: source -> target (rule)``."""
    stages = stage_modules(root)
    found = set()
    for edge in edges(root):
        source, target = package_of(edge.source), package_of(edge.target)
        rule = None
        if source in ("fraud_model", "system_of_record") and target != source:
            rule = f"{source} stands on nothing of the project"
        elif source == "fraud_rules" and target not in ("fraud_rules", "fraud_model"):
            rule = "fraud_rules stands only on fraud_model"
        elif source == "training" and target == "app":
            rule = "training does not import the service"
        elif source == "app" and target not in SERVICE_IMPORTS:
            rule = (
                "the service imports only itself, fraud_model, fraud_rules, system_of_record, "
                "feature_repo"
            )
        elif source in PRODUCT and target in ("tests", "tools"):
            rule = "product code does not import tests or tools"
        elif source == "tools" and target == "tests":
            rule = "tools do not import test fixtures"
        elif edge.source in stages and any(
            edge.target == s or edge.target.startswith(f"{s}.") for s in stages - {edge.source}
        ):
            rule = "no stage imports another stage"
        if rule:
            found.add(f"{edge.source} -> {edge.target} (line {edge.line}): {rule}")
    return sorted(found)


ROLES = {
    "app": "the service",
    "fraud_model": "bundle format and scorer",
    "fraud_rules": "rules engine, rules as data",
    "system_of_record": "decisions and labels, shared",
    "training": "DVC stages and their libraries",
    "feature_repo": "Feast definitions",
    "benchmarks": "load and measurement clients",
    "tools": "repository tooling",
    "locustfile": "Locust users",
}


def mermaid(root: Path = ROOT) -> str:
    """The package diagram of docs/architecture.md: one node per package (tests left out)
    and one arrow per package that imports another (``--json`` has the edge counts)."""
    table = summary(root)
    lines = ["flowchart TD"]
    for package in table:
        if package != "tests":
            name = f"{package}.py" if package in TOP_MODULES else f"{package}/"
            lines.append(f'  {package}["{name}<br/>{ROLES.get(package, "")}"]')
    for package, counts in table.items():
        for key in sorted(counts):
            if package != "tests" and key.startswith("-> "):
                lines.append(f"  {package} --> {key[3:]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository to read")
    parser.add_argument("--edges", action="store_true", help="list cross-package edges")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 on a layering violation")
    parser.add_argument("--mermaid", action="store_true", help="print the package diagram")
    args = parser.parse_args(argv)
    table = summary(args.root)
    if args.mermaid:
        print(mermaid(args.root))
    elif args.json:
        print(json.dumps(table, indent=2))
    else:
        for package, counts in table.items():
            rest = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k.startswith("->"))
            print(
                f"{package:<13} {counts.get('modules', 0):>4} modules "
                f"{counts.get('internal', 0):>4} internal edges  {rest}"
            )
    if args.edges:
        for edge in sorted({(e.source, e.target) for e in edges(args.root)}):
            if package_of(edge[0]) != package_of(edge[1]):
                print(f"  {edge[0]} -> {edge[1]}")
    if args.check:
        broken = violations(args.root)
        for line in broken:
            print(line, file=sys.stderr)
        return 1 if broken else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
