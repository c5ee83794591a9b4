"""Import Feast quickly, and run its CLI the same way.

Feast decorates its classes with typeguard's ``@typechecked``, which re-parses and
recompiles whole modules at import time: about 5 of the 8 seconds ``import feast`` takes
on a 2-core machine. typeguard skips that instrumentation under ``python -O``; this does
the same for the current process only, before Feast is imported, and changes nothing
else (Feast's behaviour for valid calls is unaffected). Every module of this project that
imports Feast calls :func:`import_feast` first; ``python -m feature_repo.feast_runtime
ARGS`` is the ``feast ARGS`` command with the same start-up.

:func:`online_config` is how the scoring service reads a ``feature_store*.yaml``: the
yamls name Spark as the offline store (training and materialization), whose config class
imports pyspark; the service only reads and pushes online, and its image has no pyspark
or Java, so it swaps in Feast's dependency-free ``file`` offline store, which it never calls.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _identity_typechecked(target: Any = None, **_: Any) -> Any:
    return target if target is not None else (lambda function: function)


def import_feast() -> ModuleType:
    """Return the ``feast`` module, imported without typeguard instrumentation."""
    if "feast" not in sys.modules:
        import typeguard

        typeguard.typechecked = _identity_typechecked
    import feast

    return feast


def online_config(repo: Path, yaml_name: str) -> Any:
    """The ``RepoConfig`` of ``repo / yaml_name`` (``${VARS}`` expanded from the
    environment, as ``feast`` does) with the offline store replaced by ``file``."""
    import os

    import yaml

    import_feast()
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load(os.path.expandvars((repo / yaml_name).read_text()))
    raw["offline_store"] = {"type": "file"}
    config = RepoConfig(**raw)
    config.repo_path = repo
    return config


def main() -> None:
    """``feast`` CLI entry point with the fast import."""
    import_feast()
    from feast.cli.cli import cli

    cli(prog_name="feast")


if __name__ == "__main__":
    main()
