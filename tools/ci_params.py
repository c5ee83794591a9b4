"""Merge an overrides file (default ``params.ci.yaml``) into ``params.yaml`` in place.

CI runs the pipeline at a smaller scale this way; never commit the merged file.
    python tools/ci_params.py [--overrides params.ci.yaml] [--params params.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml


def merge(target: dict[str, Any], overrides: dict[str, Any], where: str = "") -> None:
    """Deep-merge ``overrides`` into ``target``; an override must name an existing key."""
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else key
        if key not in target:
            raise KeyError(f"{path} is not in params.yaml")
        if isinstance(value, dict) and isinstance(target[key], dict):
            merge(target[key], value, path)
        else:
            target[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overrides", type=Path, default=Path("params.ci.yaml"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    merge(params, yaml.safe_load(args.overrides.read_text()))
    args.params.write_text(yaml.safe_dump(params, sort_keys=False))
    print(f"{args.params}: merged {args.overrides}")


if __name__ == "__main__":
    main()
