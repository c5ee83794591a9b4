"""The pieces of ``make loop`` (:mod:`tools.data_loop`): the workspace and its steps'
record, subprocesses, the Feast repository copies, training with the registry, the
service's HTTP calls, the replay client and the quality of what the service answered."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.metrics import average_precision_score

from benchmarks.http_client import Client, parse_url
from benchmarks.postgres_server import PostgresServer
from benchmarks.server import Server
from system_of_record.store import RecordStore
from tools.ci_params import merge

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "fraud_detection_v2"
REPO_FILES = ("*.py", "feature_store.yaml", "feature_store.gke.yaml", ".feastignore")
TABLES = ("customer_features", "terminal_features", "terminal_locations", "customer_velocity")


@dataclass
class Loop:
    """The workspace, the run's parameters and what each step reported."""

    workspace: Path
    replay_days: int
    next_days: int
    rate: float
    steps: list[dict[str, Any]] = field(default_factory=list)

    def path(self, *parts: str) -> Path:
        return self.workspace.joinpath(*parts)

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a step; what it puts in the yielded dict is printed and kept."""
        print(f"\n== loop: {name}", flush=True)
        began = time.perf_counter()
        facts: dict[str, Any] = {}
        yield facts
        facts = {"step": name, "seconds": round(time.perf_counter() - began, 1), **facts}
        self.steps.append(facts)
        shown = ", ".join(f"{k}: {v}" for k, v in facts.items() if k != "step")
        print(f"== loop: {name} done ({shown})", flush=True)


def python(loop: Loop, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m ...`` in the workspace, its output shown and returned."""
    command = [sys.executable, "-m", *args]
    print("$ python -m " + " ".join(args), flush=True)
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": f"sqlite:///{loop.path('mlflow.db')}",
        **(env or {}),
    }
    done = subprocess.run(
        command, cwd=loop.workspace, env=environment, capture_output=True, text=True, check=False
    )
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.split(":", 1)[0] in _ECHO]
    print("\n".join(f"   {line}" for line in lines), flush=True)
    if done.returncode != 0:
        raise SystemExit(f"loop: python -m {' '.join(args)} failed:\n{output[-3000:]}")
    return output


_ECHO = {
    "data", "features", "load", "training_set", "train", "evaluate", "export", "job-run",
    "record_history",
}  # fmt: skip


def write_params(loop: Loop, name: str, overrides: dict[str, Any]) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    merge(params, yaml.safe_load((ROOT / "params.loop.yaml").read_text()))
    merge(params, overrides)
    path = loop.path(name)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def feature_repo(target: Path) -> Path:
    """A Feast repository with the project's definitions and an empty data directory."""
    (target / "data").mkdir(parents=True, exist_ok=True)
    for pattern in REPO_FILES:
        for source in (ROOT / "feature_repo").glob(pattern):
            shutil.copy2(source, target / source.name)
    return target


def train_and_register(
    loop: Loop, params: Path, data: Path, repo: Path, out: Path
) -> dict[str, Any]:
    """Training set through Feast, training, evaluation and the registry's gate."""
    training_set = out / "training_set"
    python(
        loop,
        "training.training_set",
        "--data",
        str(data),
        "--repo",
        str(repo),
        "--out",
        str(training_set),
        "--params",
        str(params),
    )
    files = {
        "--bundle": out / "bundle",
        "--train-report": out / "train.json",
        "--metrics": out / "evaluate.json",
        "--gate": out / "gate.json",
    }
    python(
        loop,
        "training.train",
        "--training-set",
        str(training_set),
        "--bundle",
        str(files["--bundle"]),
        "--report",
        str(files["--train-report"]),
        "--flagged",
        str(out / "flagged.csv"),
        "--params",
        str(params),
    )
    python(
        loop,
        "training.evaluate",
        "--training-set",
        str(training_set),
        "--plots",
        str(out / "plots"),
        "--params",
        str(params),
        *[str(x) for pair in files.items() for x in pair],
    )
    gate: dict[str, Any] = json.loads(files["--gate"].read_text())
    evaluation = json.loads(files["--metrics"].read_text())
    return {**gate, "test_auprc": round(evaluation["test"]["auprc"], 4)}


def request(server: Server, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """One request to the service (the project's HTTP client): status and body."""

    async def send() -> tuple[int, bytes]:
        client = Client(parse_url(f"http://127.0.0.1:{server.port}"), 1, 30.0)
        raw = b"" if body is None else json.dumps(body).encode()
        response = await client.request(method, path, raw)
        return response.status, response.body

    return asyncio.run(send())


def http(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A JSON request: status and decoded answer."""
    status, raw = request(server, method, path, body)
    return status, json.loads(raw or b"null")


def spooled(server: Server) -> int:
    """Decisions the service holds that are not yet in the system of record."""
    count: int = http(server, "GET", "/readyz")[1]["system_of_record"]["spooled"]
    return count


def replay(loop: Loop, server: Server, frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """Send ``frame``'s transactions in time order through the API (the replay client)."""
    data = loop.path("replay", f"{name}.parquet")
    data.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(data, index=False)
    out = loop.path("replay", f"{name}.json")
    python(
        loop,
        "benchmarks.replay.client",
        "--data",
        str(data),
        "--rate",
        str(loop.rate),
        "--url",
        f"http://127.0.0.1:{server.port}",
        "--out",
        str(out),
        "--features-snapshot",
        "none",
    )
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"loop: timed out waiting for {what}")
        time.sleep(0.2)


def answered_auprc(store: RecordStore, truth: pd.DataFrame) -> dict[str, Any]:
    """AUPRC of the scores the service recorded for ``truth``'s transactions, per model."""
    with store.transaction() as cursor:
        cursor.execute(
            "SELECT transaction_id, model_version, fraud_probability FROM decisions "
            "WHERE model_version <> 'history'"
        )
        scored = pd.DataFrame(cursor.fetchall(), columns=["transaction_id", "model", "p"])
    rows = scored.merge(truth[["transaction_id", "is_fraud"]], on="transaction_id")
    return {
        model: {
            "transactions": len(part),
            "frauds": int(part["is_fraud"].sum()),
            "auprc": round(float(average_precision_score(part["is_fraud"], part["p"])), 4),
        }
        for model, part in rows.groupby("model")
        if part["is_fraud"].nunique() == 2
    }


def record_job(loop: Loop, database: PostgresServer, job: str, detail: dict[str, Any]) -> None:
    python(
        loop,
        "system_of_record",
        "job-run",
        "--url",
        database.url,
        "--password-file",
        str(database.password_file),
        "--job",
        job,
        "--status",
        "succeeded",
        "--detail",
        json.dumps(detail),
    )
