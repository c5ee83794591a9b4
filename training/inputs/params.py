"""Read ``params.yaml``: the one place pipeline parameters come from (every stage reads its
section through :func:`load_params`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The parsed parameters file (one section per pipeline step)."""
    with Path(path).open(encoding="utf-8") as handle:
        params = yaml.safe_load(handle)
    if not isinstance(params, dict):
        raise ValueError(f"{path} is not a mapping of sections")
    return params
