"""Publish the offline tables a FeatureService reads, and load them into an online store.

Two jobs share this module, locally and on GKE:

- ``publish``: the retraining job copies every table the FeatureService reads (each
  stored feature view's batch source, including those behind on-demand views and push
  sources; a single Parquet file or a date-partitioned dataset directory) and the
  registry to the directory the online-store job reads (a Cloud Storage bucket on GKE).
  The set is derived from the registered definitions, so a new source can never be left
  out of it.
- ``load``: the online-store job (the ``feast-materialize`` CronJob, and the DVC stage
  ``materialize``) materializes each view over an explicit window taken from the tables
  themselves: the last TTL before the newest snapshot for views with a TTL, the whole
  table for reference and stream views, read through the yaml's Spark offline store
  (:mod:`feature_repo.offline_spark`). Nothing depends on the materialization intervals
  recorded in the registry, which describe the machine that wrote it (a registry
  published after a local run would make ``materialize-incremental`` start after all
  the data and load nothing). Loading is idempotent: Feast's Redis store keeps the newer of a
  stored and an incoming row, so a rerun, or the hourly job after the service pushed
  fresher velocity state, never moves a value back in time. It ends by writing the load
  record (:mod:`feature_repo.online_status`) that the service's readiness check reads.

    python -m feature_repo.online_load publish --repo feature_repo --to DIR
    python -m feature_repo.online_load load --repo feature_repo \\
        --feature-store-yaml feature_store.gke.yaml --feature-service fraud_detection_v2
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from feature_repo.feast_runtime import import_feast
from feature_repo.offline_spark import repo_directory

REGISTRY = "registry.db"


@dataclass(frozen=True)
class ViewWindow:
    """What one stored view loads: rows of ``table`` with ``start <= time < end``."""

    view: str
    table: Path
    join_key: str
    start: pd.Timestamp
    end: pd.Timestamp
    entities: int
    canary: str | None


def open_store(repo: Path, yaml_name: str = "feature_store.yaml") -> Any:
    """A ``FeatureStore`` on ``repo`` with ``yaml_name`` and its (Spark) offline store."""
    import_feast()
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo), fs_yaml_file=repo / yaml_name)


def stored_views(store: Any, service_name: str) -> list[Any]:
    """Every stored feature view the FeatureService reads, directly or through its
    on-demand views, in a stable order."""
    service = store.get_feature_service(service_name)
    names: dict[str, None] = {}
    for projection in service.feature_view_projections:
        try:
            odfv = store.get_on_demand_feature_view(projection.name)
        except Exception:  # Feast raises its own not-found error for a stored view
            names[projection.name] = None
            continue
        for source in odfv.source_feature_view_projections:
            names[source] = None
    return [store.get_feature_view(name) for name in names]


def source_table(view: Any) -> str:
    """The relative path of a view's batch table (a push source's batch source too)."""
    source = view.batch_source
    path = getattr(source, "path", None)
    if not path:
        raise ValueError(f"view {view.name}: its batch source {source.name} has no file path")
    return str(path)


def publish(repo: Path, feature_service: str, to: Path) -> list[Path]:
    """Copy the registry and every table ``feature_service`` reads from ``repo`` to ``to``.

    Each table is written beside its target and renamed over it, so a reader never sees
    a half-written table; the registry goes last, after the tables it describes.
    """
    store = open_store(repo)
    tables = sorted({source_table(view) for view in stored_views(store, feature_service)})
    to.mkdir(parents=True, exist_ok=True)
    written = []
    for relative in [*tables, f"data/{REGISTRY}"]:
        source = repo / relative
        if not source.exists():
            raise FileNotFoundError(f"publish: {source} is missing ({feature_service} reads it)")
        target = to / Path(relative).name
        size = _copy_replacing(source, target)
        written.append(target)
        print(f"publish: {relative} -> {target} ({size:,} bytes)", flush=True)
    return written


def _copy_replacing(source: Path, target: Path) -> int:
    """Copy a file or a dataset directory beside ``target``, then swap it in; its size."""
    partial = target.with_name(target.name + ".partial")
    stale = target.with_name(target.name + ".stale")
    for leftover in (partial, stale):
        _remove(leftover)
    if source.is_dir():
        shutil.copytree(source, partial)
    else:
        shutil.copyfile(source, partial)
    if target.is_dir() or (source.is_dir() and target.exists()):
        target.replace(stale)  # nothing is renamed over a directory, or a file over one
    partial.replace(target)
    _remove(stale)
    files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def data_end(repo: Path, windows: Sequence[tuple[Any, Path]]) -> pd.Timestamp:
    """Just after the newest row of the views with a TTL (the daily snapshots)."""
    snapshots = [table for view, table in windows if view.ttl and view.stream_source is None]
    ends = [_timestamps(repo / table).max() for table in snapshots or [t for _, t in windows]]
    return pd.Timestamp(max(ends)) + pd.Timedelta(seconds=1)


def _timestamps(table: Path) -> pd.Series:
    return read_columns(table, ["event_timestamp"])["event_timestamp"]


def read_columns(table: Path, columns: list[str]) -> pd.DataFrame:
    """Only ``columns`` of a table: one Parquet file or a ``date=``-partitioned dataset."""
    return pd.read_parquet(table, columns=columns)


def plan(
    repo: Path, store: Any, feature_service: str, end: pd.Timestamp | None = None
) -> list[ViewWindow]:
    """The window of each stored view: ``[end - ttl, end)`` for the snapshot views (their
    newest snapshot per entity), ``[first row, end)`` for views without a TTL and for
    streamed state (a customer's newest velocity state, however old: the features decide
    what is too old to count). ``end`` defaults to just after the newest snapshot."""
    views = [(view, Path(source_table(view))) for view in stored_views(store, feature_service)]
    end = data_end(repo, views) if end is None else end
    windows = []
    for view, table in views:
        key = view.join_keys[0]
        frame = read_columns(repo / table, [key, "event_timestamp"])
        snapshot = bool(view.ttl) and view.stream_source is None
        start = end - pd.Timedelta(view.ttl) if snapshot else frame["event_timestamp"].min()
        rows = frame[(frame["event_timestamp"] >= start) & (frame["event_timestamp"] < end)]
        newest = rows[rows["event_timestamp"] == rows["event_timestamp"].max()]
        canary = str(newest[key].min()) if len(newest) else None
        windows.append(
            ViewWindow(view.name, table, key, start, end, int(rows[key].nunique()), canary)
        )
    return windows


def load(
    repo: Path,
    yaml_name: str,
    feature_service: str,
    end: pd.Timestamp | None = None,
) -> list[ViewWindow]:
    """Materialize every stored view of ``feature_service`` over its window into the online
    store of ``yaml_name``, then write the load record the service checks."""
    from feature_repo.online_status import LoadRecord, ViewLoad, write_load_record

    repo = repo.resolve()
    store = open_store(repo, yaml_name)
    windows = plan(repo, store, feature_service, end)
    # The store's tables for these views (SQLite needs them; Redis has nothing to create):
    # `feast apply` would do it, but the job must not rewrite the published registry.
    store._get_provider().update_infra(
        project=store.project,
        tables_to_delete=[],
        tables_to_keep=[store.get_feature_view(w.view) for w in windows],
        entities_to_delete=[],
        entities_to_keep=[],
        partial=True,
    )
    with repo_directory(store, repo):
        for window in windows:
            began = time.perf_counter()
            store.materialize(  # Feast includes the end instant; the window excludes it
                start_date=window.start.to_pydatetime(),
                end_date=(window.end - pd.Timedelta(microseconds=1)).to_pydatetime(),
                feature_views=[window.view],
            )
            print(
                f"load: {window.view} [{window.start}, {window.end}): {window.entities:,} "
                f"entities in {time.perf_counter() - began:.1f} s",
                flush=True,
            )
    record = LoadRecord(
        feature_service=feature_service,
        end=windows[0].end.to_pydatetime(),
        loaded_at=datetime.now(UTC),
        views={w.view: ViewLoad(entities=w.entities, canary=w.canary) for w in windows},
    )
    write_load_record(store, record)
    print(f"load: record written for {feature_service}, data current to {record.end}", flush=True)
    return windows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    publishing = commands.add_parser("publish", help="copy the registry and the tables it reads")
    publishing.add_argument("--repo", type=Path, default=Path("feature_repo"))
    publishing.add_argument("--to", type=Path, required=True, help="the published directory")
    loading = commands.add_parser("load", help="materialize every view over explicit windows")
    loading.add_argument("--repo", type=Path, default=Path("feature_repo"))
    loading.add_argument("--feature-store-yaml", default="feature_store.yaml")
    loading.add_argument(
        "--end", type=pd.Timestamp, help="load the store as of this time (default: the data's end)"
    )
    for sub in (publishing, loading):
        sub.add_argument("--feature-service", default="fraud_detection_v2")
    args = parser.parse_args(argv)
    if args.command == "publish":
        publish(args.repo, args.feature_service, args.to)
    else:
        end = (
            args.end.tz_localize("UTC")
            if args.end is not None and args.end.tz is None
            else args.end
        )
        load(args.repo, args.feature_store_yaml, args.feature_service, end)


if __name__ == "__main__":
    main()
