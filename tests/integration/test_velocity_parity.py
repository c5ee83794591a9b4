"""Online/offline parity of the velocity features, through the real code on both sides.

Offline: Feast's ``get_historical_features`` on ``fraud_detection_v2`` (the training set's
path: the velocity log written by the ``features`` stage, the point-in-time join, the
on-demand view). Online: a copy of the repo materialized *as of* the start of a window,
then every transaction of the window scored by the service's ``ScoringService`` in
timestamp order (single transactions and small groups), each group's transactions pushed
by the real ``VelocityTracker`` into the SQLite online store before the next group is
looked up. Every velocity feature must be equal.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.schemas import TransactionIn
from app.services.features import OnlineFeatures
from app.services.predictor import Predictor
from app.services.scoring_service import ScoringService
from app.services.velocity import VelocityTracker
from feature_repo.velocity import VELOCITY_FEATURES
from fraud_model.scorer import no_stage
from tests.serving import as_request
from training.inputs.feast_store import materialize, training_store
from training.training_set import historical_features

pytestmark = pytest.mark.integration
SERVICE = "fraud_detection_v2"
WINDOW_ROWS = 1_500


@pytest.fixture(scope="module")
def window(tiny_stream: pd.DataFrame) -> pd.DataFrame:
    """The last transactions of the tiny stream, in timestamp order (ties: file order)."""
    ordered = tiny_stream.sort_values("timestamp", kind="stable")
    start = ordered.timestamp.iloc[-WINDOW_ROWS]
    return ordered[ordered.timestamp >= start].reset_index(drop=True)  # no tie cut in two


@pytest.fixture(scope="module")
def repo_as_of_window_start(
    feast_repo: Path, window: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    repo = tmp_path_factory.mktemp("parity") / "feature_repo"
    shutil.copytree(feast_repo, repo)
    materialize(repo, SERVICE, end=pd.Timestamp(window.timestamp.iloc[0]))
    return repo


def offline(repo: Path, window: pd.DataFrame) -> pd.DataFrame:
    store = training_store(repo)
    return historical_features(store, repo, window, SERVICE)[list(VELOCITY_FEATURES)]


def online(repo: Path, window: pd.DataFrame, group_sizes: list[int]) -> pd.DataFrame:
    features = OnlineFeatures.open(repo, "feature_store.yaml", SERVICE)
    tracker = VelocityTracker(features.state_store(), flush_interval_s=0.005)
    service = ScoringService(
        features, Predictor(None), timeout_s=5.0, span=no_stage, velocity=tracker
    )
    requests = [TransactionIn.model_validate(as_request(r)) for r in window.itertuples()]
    rows: list[Any] = []
    start, turn = 0, 0
    try:
        while start < len(requests):
            group = requests[start : start + group_sizes[turn % len(group_sizes)]]
            built = service.rows(group, service.lookup_blocking(group))
            service.predict(built)  # records the group with the tracker
            assert tracker.flush(), "pusher did not store the group"
            rows.append(built.matrix(list(VELOCITY_FEATURES)))
            start += len(group)
            turn += 1
    finally:
        service.close()
    return pd.DataFrame(np.vstack(rows), columns=list(VELOCITY_FEATURES))


def newest_stored(repo: Path, customers: list[str]) -> float:
    features = OnlineFeatures.open(repo, "feature_store.yaml", SERVICE)
    store = features.state_store()
    try:
        states, _ = store.read(customers)
    finally:
        store.close()
        features.close()
    return max(s.events[-1].seconds for s in states if s.events)


def test_online_velocity_features_equal_the_offline_ones(
    repo_as_of_window_start: Path, window: pd.DataFrame
) -> None:
    customers = window.customer_id.astype(str).unique().tolist()
    start = pd.Timestamp(window.timestamp.iloc[0]).timestamp()
    assert newest_stored(repo_as_of_window_start, customers) < start  # as of the start
    want = offline(repo_as_of_window_start, window)
    got = online(repo_as_of_window_start, window, group_sizes=[1, 1, 3, 1, 7, 2])
    assert want["vel_tx_count_24h"].sum() > len(window)  # the window sees real history
    assert (want["vel_tx_count_1h"] > 0).sum() > 20
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-9)
    end = pd.Timestamp(window.timestamp.iloc[-1]).timestamp()
    assert newest_stored(repo_as_of_window_start, customers) == end  # all pushed
