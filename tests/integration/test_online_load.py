"""Publishing the feature tables and loading an online store from exactly what was published.

The deployed online store is loaded by a job on another machine from what the retraining
job published: the registry of a repository that was already materialized locally, and
the tables. These tests run that hand-over on the tiny Feast repository.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from feature_repo.online_load import load, open_store, plan, publish, stored_views
from feature_repo.online_status import read_load_record

pytestmark = pytest.mark.integration
SERVICE = "fraud_detection_v2"
REPO_FILES = ("definitions.py", "feature_store.yaml", ".feastignore")


def rows(database: Path, view: str) -> int:
    """Entity rows of one view in a SQLite online store (0 when it has no table yet)."""
    with sqlite3.connect(database) as connection:
        table = f"fraud_detection_{view}"
        known = connection.execute("SELECT name FROM sqlite_master WHERE name = ?", (table,))
        if known.fetchone() is None:
            return 0
        return int(
            connection.execute(
                f"SELECT COUNT(DISTINCT entity_key) FROM fraud_detection_{view}"
            ).fetchone()[0]
        )


@pytest.fixture
def published(feast_repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bucket"
    publish(feast_repo, SERVICE, out)
    return out


@pytest.fixture
def deployed(published: Path, tmp_path: Path) -> Path:
    """A repository as the loading job sees it: the definitions of the image, the data
    directory from the bucket, no online store yet."""
    repo = tmp_path / "job" / "feature_repo"
    repo.mkdir(parents=True)
    for name in REPO_FILES:
        shutil.copy(Path("feature_repo") / name, repo / name)
    shutil.copytree(published, repo / "data")
    return repo


def test_publish_copies_every_table_the_service_reads_and_the_registry(
    feast_repo: Path, published: Path
) -> None:
    names = sorted(p.name for p in published.iterdir())
    assert names == [
        "customer_features.parquet",
        "customer_velocity.parquet",
        "registry.db",
        "terminal_features.parquet",
        "terminal_locations.parquet",
    ]
    for name in names:  # files, or the feature job's date-partitioned directories
        assert _contents(published / name) == _contents(feast_repo / "data" / name)
        assert _contents(published / name)  # not empty


def _contents(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (``path`` itself when it is a file), by relative name."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def test_the_publish_set_follows_the_definitions(feast_repo: Path) -> None:
    store = open_store(feast_repo)
    v1 = {view.name for view in stored_views(store, "fraud_detection_v1")}
    v2 = {view.name for view in stored_views(store, SERVICE)}
    assert v1 == {"customer_features", "terminal_features"}
    assert v2 == v1 | {"customer_velocity", "terminal_location"}


def test_incremental_materialization_from_a_published_registry_loads_nothing(
    deployed: Path,
) -> None:
    """Why the job no longer runs ``materialize-incremental``: the published registry
    records the publishing machine's materialization, so it starts after all the data."""
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")
    subprocess.run(
        [sys.executable, "-m", "feature_repo.feast_runtime", "-c", str(deployed)]
        + ["materialize-incremental", now, "--views", "customer_features"],
        check=True,
        capture_output=True,
        cwd=deployed,  # Spark resolves the sources' relative paths against the process's
    )
    assert rows(deployed / "data" / "online_store.db", "customer_features") == 0


def test_load_fills_an_empty_store_from_the_published_files_alone(
    feast_repo: Path, deployed: Path
) -> None:
    windows = load(deployed, "feature_store.yaml", SERVICE)
    database = deployed / "data" / "online_store.db"
    by_view = {w.view: w for w in windows}
    for view in (
        "customer_features",
        "terminal_features",
        "terminal_location",
        "customer_velocity",
    ):
        assert by_view[view].entities > 0
        assert rows(database, view) == by_view[view].entities
    # The same entities as the local stage put online (the snapshot views' newest TTL).
    local = feast_repo / "data" / "online_store.db"
    for view in ("customer_features", "terminal_features"):
        assert rows(database, view) == rows(local, view)
    record = read_load_record(open_store(deployed))
    assert record is not None and record.feature_service == SERVICE
    assert record.views["customer_features"].canary == by_view["customer_features"].canary
    assert record.end == by_view["customer_features"].end.to_pydatetime()


def test_load_is_idempotent_and_windows_come_from_the_tables(deployed: Path) -> None:
    first = load(deployed, "feature_store.yaml", SERVICE)
    again = load(deployed, "feature_store.yaml", SERVICE)
    assert [(w.view, w.start, w.end, w.entities) for w in first] == [
        (w.view, w.start, w.end, w.entities) for w in again
    ]
    snapshots = pd.read_parquet(deployed / "data" / "customer_features.parquet")
    window = {w.view: w for w in plan(deployed, open_store(deployed), SERVICE)}
    assert window["customer_features"].end == snapshots.event_timestamp.max() + pd.Timedelta(
        seconds=1
    )
    assert window["customer_features"].end - window["customer_features"].start == pd.Timedelta(
        days=2
    )
    newest = snapshots[snapshots.event_timestamp == snapshots.event_timestamp.max()]
    assert window["customer_features"].canary in set(newest.customer_id)


def test_the_stage_rebuild_never_replays_the_old_stores_write_ahead_log(
    feast_repo: Path, tmp_path: Path
) -> None:
    """SQLite replays a ``-wal`` it finds next to a database onto it: a rebuild that kept
    the old store's log would serve the old store's pages from the new file."""
    from training.inputs.feast_store import materialize

    repo = tmp_path / "feature_repo"
    shutil.copytree(feast_repo, repo)
    database = repo / "data" / "online_store.db"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE stale_marker (x INTEGER)")
    connection.commit()
    stale_log = (repo / "data" / "online_store.db-wal").read_bytes()
    connection.close()  # checkpoints and deletes the log: put the stale one back
    (repo / "data" / "online_store.db-wal").write_bytes(stale_log)

    materialize(repo, SERVICE)

    with sqlite3.connect(database) as rebuilt:
        tables = {name for (name,) in rebuilt.execute("SELECT name FROM sqlite_master")}
    assert "stale_marker" not in tables
    assert rows(database, "customer_features") > 0
