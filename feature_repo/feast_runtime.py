"""Import Feast quickly, and run its CLI the same way.

Feast decorates its classes with typeguard's ``@typechecked``, which re-parses and
recompiles whole modules at import time: about 5 of the 8 seconds ``import feast`` takes
on a 2-core machine. typeguard skips that instrumentation under ``python -O``; this does
the same for the current process only, before Feast is imported, and changes nothing
else (Feast's behaviour for valid calls is unaffected). Every module of this project that
imports Feast calls :func:`import_feast` first; ``python -m feature_repo.feast_runtime
ARGS`` is the ``feast ARGS`` command with the same start-up.
"""

from __future__ import annotations

import sys
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


def main() -> None:
    """``feast`` CLI entry point with the fast import."""
    import_feast()
    from feast.cli.cli import cli

    cli(prog_name="feast")


if __name__ == "__main__":
    main()
