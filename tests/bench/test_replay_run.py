"""make replay's set-up (benchmarks/replay/orchestrate.py): the daily job's schedule
follows simulated midnights at the replay rate, and the store copy is as of the first
replayed transaction."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.services.features import OnlineFeatures
from benchmarks.replay.orchestrate import DailyJob, store_as_of


def test_the_daily_job_runs_when_the_stream_reaches_each_midnight(tmp_path: Path) -> None:
    stamps = pd.to_datetime(
        [
            "2025-04-16 23:00",
            "2025-04-16 23:30",
            "2025-04-17 00:10",
            "2025-04-17 05:00",
            "2025-04-19 01:00",
        ],
        utc=True,
    )
    job = DailyJob(tmp_path, pd.DataFrame({"timestamp": stamps}), rate=2.0, log=tmp_path / "l")
    assert [(due, day.date().isoformat()) for due, day in job.schedule] == [
        (1.0, "2025-04-17"),  # the third transaction is due 2 / 2.0 s after the start
        (2.0, "2025-04-19"),
    ]


@pytest.mark.integration
def test_the_replay_store_holds_nothing_from_after_its_start(
    feast_repo: Path, tiny_stream: pd.DataFrame, tmp_path: Path
) -> None:
    start = pd.Timestamp(tiny_stream.timestamp.iloc[len(tiny_stream) // 2])
    repo = tmp_path / "feature_repo"
    record = store_as_of(feast_repo, repo, "fraud_detection_v2", start)
    assert json.loads((repo / "data" / "materialized.json").read_text())["end"] == record["end"]
    features = OnlineFeatures.open(repo, "feature_store.yaml", "fraud_detection_v2")
    try:
        customers = tiny_stream.customer_id.astype(str).unique().tolist()
        states = features.read_states(customers)
        snapshots = features.read(
            {"customer_id": customers, "terminal_id": ["T000001"] * len(customers)}
        )
    finally:
        features.close()
    newest = max(s.events[-1].seconds for s in states if s.events)
    assert newest < start.timestamp()
    snapshot_times = snapshots["customer_features"].event_seconds
    assert snapshot_times[~pd.isna(snapshot_times)].max() <= start.timestamp()
