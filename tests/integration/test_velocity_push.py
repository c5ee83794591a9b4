"""The service's state writer and Feast's own ``push`` store the same row; Feast's
``get_online_features`` computes the same velocity features as the service."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from app.services.features import OnlineFeatures
from app.services.velocity_store import VelocityStateStore
from feature_repo.feast_runtime import import_feast
from feature_repo.velocity import (
    EMPTY,
    PUSH_SOURCE,
    STATE_FIELDS,
    VELOCITY_FEATURES,
    VelocityEvent,
    features_of,
)

pytestmark = pytest.mark.integration
T0 = 1_750_000_000.0


@pytest.fixture
def repo(feast_repo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "feature_repo"
    shutil.copytree(feast_repo, copy)
    return copy


def test_the_service_writer_stores_what_feast_push_stores(repo: Path) -> None:
    feast = import_feast()
    from feast.data_source import PushMode

    store = feast.FeatureStore(repo_path=str(repo))
    state = EMPTY.add(
        [
            VelocityEvent(T0 - 400, 12.5, "T000001", 1.5, 2.5, "TXA"),
            VelocityEvent(T0 - 100, 99.0, "T000002", float("nan"), 3.0, "TXB"),
        ]
    )
    ours = VelocityStateStore(store)
    ours.write(["CWRITER"], [state], [T0 - 100])
    frame = pd.DataFrame(
        [
            {
                "customer_id": "CPUSH",
                "event_timestamp": pd.Timestamp(T0 - 100, unit="s", tz="UTC"),
                **state.to_row(),
            }
        ]
    )
    store.push(PUSH_SOURCE, frame, to=PushMode.ONLINE)
    (written, pushed), times = ours.read(["CWRITER", "CPUSH"])
    ours.close()
    assert written.to_row().keys() == set(STATE_FIELDS)
    assert str(written.to_row()) == str(pushed.to_row())  # NaN-safe equality
    assert times == [T0 - 100, T0 - 100]

    # Feast's own online path (on-demand view included) gives the service's features.
    request = {
        "customer_id": "CWRITER",
        "terminal_id": "T000003",
        "amount": 5.0,
        "tx_epoch_seconds": int(T0),
        "distance_from_home_km": 1.0,
        "is_foreign": 0,
        "channel": "online",
        "entry_mode": "chip",
        "merchant_category": "grocery",
    }
    out = store.get_online_features(
        features=[f"velocity_features:{n}" for n in VELOCITY_FEATURES]
        + ["terminal_location:terminal_x_km", "terminal_location:terminal_y_km"],
        entity_rows=[request],
    ).to_dict()
    x, y = out["terminal_x_km"][0], out["terminal_y_km"][0]
    expected = features_of(state, T0, x, y)
    assert [out[name][0] for name in VELOCITY_FEATURES] == pytest.approx(list(expected))
    assert out["vel_tx_count_10m"][0] == 2


def test_the_v2_service_resolves_velocity_and_keeps_v1_as_it_was(repo: Path) -> None:
    v2 = OnlineFeatures.open(repo, "feature_store.yaml", "fraud_detection_v2")
    v1 = OnlineFeatures.open(repo, "feature_store.yaml", "fraud_detection_v1")
    try:
        assert v2.velocity and not v1.velocity
        assert v2.feature_names == v1.feature_names + VELOCITY_FEATURES
        assert [s.name for s in v1.views] == ["customer_features", "terminal_features"]
        assert v2.location is not None and v2.location.name == "terminal_location"
    finally:
        v1.close()
        v2.close()
