"""``make loop``: the production data loop, end to end, on small data on this machine.

Every piece runs as deployed, as its own process, in a workspace (default
``build/loop``):

1. *Before*: simulate a small data set (``params.yaml`` + ``params.loop.yaml``) and run
   the pipeline on it (Spark feature job, Feast, training, evaluation, MLflow registry:
   the first version becomes ``champion``).
2. *System of record*: a PostgreSQL (Debian's, on loopback), loaded with the history the
   deployment starts from (decisions before the replay, and the labels received by then).
3. *Serve*: the champion behind ``python -m app``, the online store as of the replay's
   start, ``RECORD_URL`` on PostgreSQL.
4. *Replay* ``--replay-days`` simulated days through the API (``benchmarks.replay.client``),
   and the chargebacks that come due meanwhile through ``/v1/feedback``.
5. *Feature job*: export the system of record to date-partitioned Parquet, then the Spark
   feature job on it.
6. *Materialize*: publish the new tables and load them into the live online store.
7. *Retrain* from the system of record's history and matured labels, through Feast;
   ``evaluate`` registers a ``challenger`` and runs the promotion gate.
8. *Reload*: when the gate promotes it, the service reloads the new bundle.
9. *Next days*: ``--next-days`` more days through the API, scored by the model in use.

Each job records its run in the system of record (``job_runs``, what the alert rules read
through ``fraud_pipeline_last_success_timestamp_seconds``). It prints what each step read
and wrote and the AUPRC of the answers on the replayed and the next days, and writes
``loop.json`` in the workspace.

    python -m tools.data_loop [--workspace build/loop] [--replay-days 2] [--next-days 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks.postgres_server import PostgresServer
from benchmarks.server import Server, app_env, free_port, start
from system_of_record.export import backfill
from system_of_record.store import open_store
from tools.loop_steps import (
    ROOT,
    SERVICE,
    TABLES,
    Loop,
    answered_auprc,
    feature_repo,
    http,
    python,
    record_job,
    replay,
    request,
    spooled,
    train_and_register,
    wait_for,
    write_params,
)
from training.inputs.feast_store import materialize


@dataclass(frozen=True)
class Initial:
    """A simulated data set already through the pipeline (the tests' session fixtures):
    the loop then only registers its bundle as the champion."""

    data: Path
    repo: Path  # a Feast repository holding the feature tables
    training_set: Path
    bundle: Path


def before(loop: Loop, params: Path, initial: Initial | None) -> tuple[Path, Path, dict[str, Any]]:
    """Step 1: the data set and the champion; returns the data, the repo and the gate."""
    data, repo = loop.path("data"), feature_repo(loop.path("feature_repo"))
    if initial is None:
        python(loop, "training.data", "build", "--data", str(data), "--params", str(params))
        python(loop, "training.features", "--data", str(data), "--out", str(repo / "data"),
               "--params", str(params))  # fmt: skip
        python(loop, "training.materialize", "--repo", str(repo), "--params", str(params))
        return data, repo, train_and_register(loop, params, data, repo, loop.path("initial"))
    shutil.copytree(initial.data, data)
    for table in TABLES:
        shutil.copytree(
            initial.repo / "data" / f"{table}.parquet", repo / "data" / f"{table}.parquet"
        )
    out = loop.path("initial")
    shutil.copytree(initial.training_set, out / "training_set")
    shutil.copytree(initial.bundle, out / "bundle")
    files = {"--training-set": "training_set", "--bundle": "bundle", "--metrics": "evaluate.json",
             "--gate": "gate.json", "--plots": "plots", "--train-report": "train.json"}  # fmt: skip
    arguments = [str(x) for flag, name in files.items() for x in (flag, out / name)]
    python(loop, "training.evaluate", *arguments, "--params", str(params))
    gate: dict[str, Any] = json.loads((out / "gate.json").read_text())
    return data, repo, gate


def run(loop: Loop, initial: Initial | None = None) -> dict[str, Any]:  # noqa: PLR0915
    """The loop, top-down (see the module docstring); returns what ``loop.json`` holds."""
    shutil.rmtree(loop.workspace, ignore_errors=True)
    loop.workspace.mkdir(parents=True)
    params = write_params(loop, "params.yaml", {})
    settings = yaml.safe_load(params.read_text())
    start_date = pd.Timestamp(settings["simulate"]["start_date"], tz="UTC")
    delay = pd.Timedelta(days=settings["features"]["label_delay_days"])

    with loop.step("1. before: simulate, and the pipeline on the simulated data") as facts:
        data, repo, gate = before(loop, params, initial)
        stream = pd.concat(pd.read_parquet(p) for p in sorted(data.glob("v*/transactions.parquet")))
        stream = stream.sort_values("timestamp", kind="stable").reset_index(drop=True)
        facts |= {
            "transactions": len(stream),
            "model": gate["bundle_version"],
            "registered": f"v{gate['version']} ({gate['reason']})",
        }
    # Production runs into the drifted period (v1): the replay and the next days are the
    # data's last days, so the retraining has drifted days to learn from; the champion not.
    last_day = stream["timestamp"].max().floor("D")
    replay_start = last_day - pd.Timedelta(days=loop.replay_days + loop.next_days)
    replay_end = replay_start + pd.Timedelta(days=loop.replay_days)
    next_end = replay_end + pd.Timedelta(days=loop.next_days)

    database = PostgresServer(loop.path("postgres"), free_port())
    server: Server | None = None
    try:
        with loop.step("2. system of record: PostgreSQL with the history") as facts:
            database.init()
            store = open_store(database.url, database.password_file)
            history = stream[stream["timestamp"] < replay_start]
            rows, labels = backfill(store, history, delay.to_pytimedelta(), replay_start)
            facts |= {"url": database.url, "decisions": rows, "labels": labels}

        with loop.step("3. serve the champion, online store as of the replay's start") as facts:
            serving_repo = feature_repo(loop.path("serving_repo"))
            for table in TABLES:
                shutil.copytree(
                    repo / "data" / f"{table}.parquet", serving_repo / "data" / f"{table}.parquet"
                )
            # The snapshot dated at the start summarises only what came before it.
            materialize(serving_repo, SERVICE, end=replay_start + pd.Timedelta(seconds=1))
            bundle = loop.path("serving", "bundle")
            shutil.copytree(loop.path("initial", "bundle"), bundle)
            port = free_port()
            env = app_env(
                port,
                loop.path("state"),
                bundle,
                serving_repo,
                RECORD_URL=database.url,
                RECORD_PASSWORD_FILE=str(database.password_file),
                RECORD_JOBS_REFRESH_SECONDS="2",
            )
            server = start([sys.executable, "-m", "app"], port, env, None, loop.path("service.log"))
            facts |= {"port": port, "model": http(server, "GET", "/v1/model")[1]["version"]}

        with loop.step(f"4. replay {loop.replay_days} days, labels through /v1/feedback") as facts:
            days = stream[
                (stream["timestamp"] >= replay_start) & (stream["timestamp"] < replay_end)
            ]
            summary = replay(loop, server, days, "replayed")
            due = history[
                (history["is_fraud"] == 1)
                & (history["timestamp"] + delay >= replay_start)
                & (history["timestamp"] + delay < replay_end)
            ]
            statuses = [
                http(
                    server,
                    "POST",
                    "/v1/feedback",
                    {"transaction_id": t, "is_fraud": True, "source": "chargeback"},
                )[0]
                for t in due["transaction_id"]
            ]
            wait_for(lambda: spooled(server) == 0, "the spool to drain")
            expected = labels + statuses.count(200)
            wait_for(lambda: store.counts()["labels"] >= expected, "the labels to arrive")
            facts |= {
                "answered": summary["answers"]["answered"],
                "labels_posted": len(statuses),
                "label_statuses": sorted(set(statuses)),
                "record": store.counts(),
            }

        with loop.step("5. feature job: export the system of record, Spark") as facts:
            export = loop.path("export")
            days_on_record = (replay_end - start_date).days + 1
            python(
                loop,
                "system_of_record",
                "export",
                "--url",
                database.url,
                "--password-file",
                str(database.password_file),
                "--out",
                str(export),
                "--days",
                str(days_on_record),
            )
            retrain_repo = feature_repo(loop.path("retrain", "feature_repo"))
            python(
                loop,
                "training.features",
                "--transactions",
                str(export),
                "--terminals",
                str(data / "terminals.parquet"),
                "--out",
                str(retrain_repo / "data"),
                "--params",
                str(params),
            )
            record_job(loop, database, "features", {"days": days_on_record})
            exported = pd.read_parquet(export / "transactions")
            facts |= {
                "exported": len(exported),
                "labelled": int(exported["is_fraud"].notna().sum()),
            }

        with loop.step("6. materialize the new tables into the live online store") as facts:
            for table in TABLES:
                target = serving_repo / "data" / f"{table}.parquet"
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(retrain_repo / "data" / f"{table}.parquet", target)
            python(
                loop,
                "feature_repo.online_load",
                "load",
                "--repo",
                str(serving_repo),
                "--feature-store-yaml",
                "feature_store.yaml",
                "--feature-service",
                SERVICE,
            )
            record_job(loop, database, "materialize", {"feature_service": SERVICE})
            facts |= {"store": str(serving_repo / "data" / "online_store.db")}

        with loop.step("7. retrain from the system of record (challenger, gate)") as facts:
            retrain_data, retrain_params = (
                loop.path("retrain", "data"),
                loop.path("params.retrain.yaml"),
            )
            python(loop, "training.inputs.record_history", "--export", str(export),
                   "--terminals", str(data / "terminals.parquet"), "--out", str(retrain_data),
                   "--params", str(params), "--params-out", str(retrain_params),
                   "--as-of", replay_end.isoformat(), "--val-days", "3",
                   "--test-days", "3")  # fmt: skip
            labelled = pd.read_parquet(retrain_data / "v0" / "transactions.parquet")
            python(
                loop,
                "training.materialize",
                "--repo",
                str(retrain_repo),
                "--params",
                str(retrain_params),
            )
            gate = train_and_register(
                loop, retrain_params, retrain_data, retrain_repo, loop.path("retrain", "out")
            )
            record_job(loop, database, "retrain", {k: gate[k] for k in ("version", "promoted")})
            facts |= {
                "rows": len(labelled),
                "frauds": int(labelled["is_fraud"].sum()),
                "challenger": f"v{gate['version']}",
                "gate": gate["reason"],
                "test_auprc": gate["test_auprc"],
            }

        with loop.step("8. reload the service when the gate promotes") as facts:
            if gate["promoted"]:
                staged = bundle.with_name("bundle.new")
                shutil.copytree(loop.path("retrain", "out", "bundle"), staged)
                shutil.rmtree(bundle)
                staged.rename(bundle)
                status, answer = http(server, "POST", "/v1/model/reload")
                facts |= {"reload": status, "answer": answer.get("status")}
            facts["serving"] = http(server, "GET", "/v1/model")[1]["version"]

        with loop.step(f"9. the next {loop.next_days} days through the API") as facts:
            after = stream[(stream["timestamp"] >= replay_end) & (stream["timestamp"] < next_end)]
            replay(loop, server, after, "next")
            wait_for(lambda: spooled(server) == 0, "the spool to drain")
            quality = {
                "replayed_days": answered_auprc(store, days),
                "next_days": answered_auprc(store, after),
            }
            facts |= {"auprc_of_answers": quality, "jobs": sorted(store.last_successes())}
            wait_for(
                lambda: b"fraud_pipeline_last_success" in request(server, "GET", "/metrics")[1],
                "the job metrics",
                timeout=90,
            )
            metrics = request(server, "GET", "/metrics")[1].decode()
            facts["metrics"] = [
                line
                for line in metrics.splitlines()
                if line.startswith(("fraud_pipeline_last_success", "fraud_record_spool_rows"))
            ]
        store.close()
    finally:
        if server is not None:
            server.process.terminate()
            server.process.wait(timeout=60)
        database.remove()
    result = {"steps": loop.steps}
    loop.path("loop.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=ROOT / "build" / "loop")
    parser.add_argument("--replay-days", type=int, default=2, help="within the 2-day TTL")
    parser.add_argument("--next-days", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="transactions per second")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    loop = Loop(args.workspace.resolve(), args.replay_days, args.next_days, args.rate)
    run(loop)
    print(f"\nloop: done in {time.perf_counter() - began:.0f}s -> {loop.path('loop.json')}")


if __name__ == "__main__":
    main()
