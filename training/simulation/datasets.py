"""The versioned datasets under ``data/``: generating them, their manifest, keeping them in
step with DVC (library of the ``data`` stage).

``data/`` is the project's raw input, tracked by ``data.dvc`` (``dvc add data``) the way a
bank's card-transaction extracts would be. Here the simulator stands in for the source:

- ``python -m training.data build`` simulates and writes every file below (:func:`build`);
- ``python -m training.data sync`` (``make data``) does nothing when ``data/`` already
  matches ``params.yaml`` and the generator code, else pulls it from the DVC remote, else
  builds it and runs ``dvc add data`` and ``dvc push`` (:func:`sync`).

Layout::

    data/customers.parquet, data/terminals.parquet   the population (synthetic attributes)
    data/v0/transactions.parquet                     earlier period (training reference)
    data/v1/transactions.parquet                     later period with concept drift
    data/poisoned/v0_train_<model>_<NN>pct.parquet   v0's training rows, labels flipped
    data/manifest.json                               provenance, sizes, rates, checksums
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from training.simulation.poison import FLIP_MODELS, poison, variant_name
from training.simulation.simulate import SCENARIOS, SimulationConfig, simulate
from training.simulation.split import TimeSplit

GENERATOR_PARAMS = ("simulate", "split", "poison")
GENERATOR_CODE = (
    "training/simulation/simulate.py",
    "training/simulation/poison.py",
    "training/simulation/split.py",
    "feature_repo/vocabulary.py",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def generator_fingerprint(params: dict[str, Any]) -> dict[str, Any]:
    """What determines the bytes under ``data/``: parameters and generator code."""
    code = hashlib.sha256()
    for name in GENERATOR_CODE:
        code.update((PROJECT_ROOT / name).read_bytes())
    return {
        "params": {section: params[section] for section in GENERATOR_PARAMS},
        "code_sha256": code.hexdigest(),
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _period_summary(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": len(frame),
        "fraud": int(frame["is_fraud"].sum()),
        "fraud_rate": round(float(frame["is_fraud"].mean()), 6) if len(frame) else 0.0,
        "start": frame["timestamp"].min().isoformat() if len(frame) else None,
        "end": frame["timestamp"].max().isoformat() if len(frame) else None,
        "customers": int(frame["customer_id"].nunique()),
        "terminals": int(frame["terminal_id"].nunique()),
        "scenarios": {
            s: int((frame["fraud_scenario"] == s).sum()) for s in SCENARIOS if s != "none"
        },
    }


def build(params: dict[str, Any], out: Path, progress: bool = True) -> dict[str, Any]:
    """Simulate every dataset into ``out`` and return the manifest written beside them."""
    config = SimulationConfig.from_params(params["simulate"])
    split = TimeSplit.from_params(params)
    if split.total_days > config.v0_days:
        raise ValueError(f"split covers {split.total_days} days but v0 has {config.v0_days}")
    data = simulate(config, progress=progress)
    tx = data.transactions
    v1_start = config.start + pd.Timedelta(days=config.v0_days)
    periods = {"v0": tx[tx["timestamp"] < v1_start], "v1": tx[tx["timestamp"] >= v1_start]}

    if out.exists():
        shutil.rmtree(out)
    files: dict[str, pd.DataFrame] = {
        "customers.parquet": data.customers,
        "terminals.parquet": data.terminals,
        **{f"{name}/transactions.parquet": frame for name, frame in periods.items()},
    }
    v0_parts = split.assign(periods["v0"]["timestamp"])
    train = periods["v0"][v0_parts == "train"].reset_index(drop=True)
    poisoned: dict[str, Any] = {}
    for model in params["poison"]["flip_models"]:
        if model not in FLIP_MODELS:
            raise ValueError(f"unknown flip model {model!r}")
        for rate in params["poison"]["rates"]:
            name = variant_name(model, rate)
            variant = poison(train, rate, model, params["poison"]["seed"])
            files[f"poisoned/{name}.parquet"] = variant
            poisoned[name] = {
                "flip_model": model,
                "rate": rate,
                "rows": len(variant),
                "flipped": int(variant["label_flipped"].sum()),
                "fraud_rate": round(float(variant["is_fraud"].mean()), 6),
            }

    manifest: dict[str, Any] = {
        "generator": generator_fingerprint(params),
        "periods": {name: _period_summary(frame) for name, frame in periods.items()},
        "split": {
            part: {
                "start": lo.isoformat(),
                "end": hi.isoformat(),
                "rows": int((v0_parts == part).sum()),
                "fraud": int(periods["v0"]["is_fraud"][v0_parts == part].sum()),
            }
            for part, (lo, hi) in split.boundaries().items()
        },
        "poisoned": poisoned,
        "files": {},
    }
    for relative, frame in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        manifest["files"][relative] = {"rows": len(frame), "sha256": sha256_file(path)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def is_current(data_dir: Path, params: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``data_dir`` holds intact data generated from these params and code."""
    manifest = read_manifest(data_dir)
    if manifest is None:
        return False, "no data/manifest.json"
    if manifest["generator"] != json.loads(json.dumps(generator_fingerprint(params))):
        return False, "generated with other parameters or generator code"
    for relative, meta in manifest["files"].items():
        path = data_dir / relative
        if not path.exists() or sha256_file(path) != meta["sha256"]:
            return False, f"{relative} is missing or modified"
    return True, "up to date"


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    dvc = Path(sys.executable).with_name("dvc")
    command = [str(dvc) if dvc.exists() else "dvc", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def sync(params: dict[str, Any], data_dir: Path, push: bool = True) -> str:
    """Make ``data_dir`` current: keep it, pull it from the DVC remote, or rebuild it."""
    current, why = is_current(data_dir, params)
    if current:
        return "data: up to date with params.yaml and data.dvc"
    tracker = data_dir.with_suffix(".dvc")
    if tracker.exists():
        print(f"data: {why}; trying `dvc pull {tracker}`", flush=True)
        pulled = _dvc("pull", str(tracker))
        current, why = is_current(data_dir, params)
        if pulled.returncode == 0 and current:
            return "data: pulled from the DVC remote"
        print(f"data: not usable from the remote ({why}); simulating", flush=True)
    build(params, data_dir)
    added = _dvc("add", str(data_dir))
    if added.returncode != 0:
        raise RuntimeError(f"dvc add {data_dir} failed:\n{added.stderr}")
    if push:
        pushed = _dvc("push", str(tracker))
        if pushed.returncode != 0:
            print(f"data: dvc push failed (continuing):\n{pushed.stderr.strip()}", flush=True)
    return f"data: built and tracked in {tracker}"
