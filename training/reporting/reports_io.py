"""Writing what the stages report: rounded, stable JSON and matplotlib figures (the audit
stages and the ``velocity_gain`` and ``poisoning`` studies)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def rounded_tree(value: Any, digits: int = 6) -> Any:
    """``value`` with every float cut to ``digits`` significant digits (so tiny error bounds
    stay readable) and NaN as None, through dicts and lists."""
    if isinstance(value, dict):
        return {str(k): rounded_tree(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded_tree(v, digits) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.{digits}g}")
    if hasattr(value, "item"):  # numpy scalars
        return rounded_tree(value.item(), digits)
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Rounded, key-sorted JSON: reruns on the same inputs give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rounded_tree(payload), indent=2, sort_keys=True) + "\n")


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (CI has no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
