"""Feast smoke test: apply and materialize a temporary repo, read features back.

After ``feast apply`` and materialization by the real ``materialize`` stage, the online
store returns the latest snapshot of a known customer and terminal; an unknown entity
comes back empty and the request-time features flag it; historical retrieval through
``fraud_detection_v1`` is point-in-time correct.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from feature_repo.feast_runtime import import_feast
from feature_repo.offline_spark import repo_directory
from feature_repo.online_request import online_request
from feature_repo.request_features import NEW_CUSTOMER, REQUEST_FEATURES

pytestmark = pytest.mark.integration
SERVICE = "fraud_detection_v1"


@pytest.fixture(scope="module")
def store(feast_repo: Path) -> Any:
    return import_feast().FeatureStore(repo_path=str(feast_repo))


def _request(tx: Any, **overrides: Any) -> dict[str, Any]:
    row = online_request(tx)
    row.update(overrides)
    return row


def test_the_feature_service_lists_every_model_input(store: Any) -> None:
    service = store.get_feature_service(SERVICE)
    names = {f.name for projection in service.feature_view_projections for f in projection.features}
    assert set(REQUEST_FEATURES) <= names
    assert {"customer_avg_amount_30d", "terminal_fraud_risk_30d"} <= names


def test_online_lookup_returns_the_latest_snapshot(
    store: Any, tiny_stream: pd.DataFrame, tiny_tables: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    customers, terminals = tiny_tables
    tx = tiny_stream.iloc[-1]
    out = store.get_online_features(
        features=store.get_feature_service(SERVICE), entity_rows=[_request(tx)]
    ).to_dict()
    latest_c = customers[customers.customer_id == tx.customer_id].iloc[-1]
    latest_t = terminals[terminals.terminal_id == tx.terminal_id].iloc[-1]
    assert out["customer_avg_amount_30d"][0] == pytest.approx(latest_c.customer_avg_amount_30d)
    assert out["customer_tx_count_7d"][0] == latest_c.customer_tx_count_7d
    assert out["terminal_tx_count_30d"][0] == latest_t.terminal_tx_count_30d
    assert out["terminal_fraud_risk_30d"][0] == pytest.approx(latest_t.terminal_fraud_risk_30d)
    expected_ratio = tx.amount / (latest_c.customer_avg_amount_30d + 1)
    assert out["amount_to_avg_30d"][0] == pytest.approx(expected_ratio)
    assert out["is_new_customer"][0] == 0


def test_unknown_entities_come_back_empty_and_flagged(
    store: Any, tiny_stream: pd.DataFrame
) -> None:
    tx = tiny_stream.iloc[-1]
    request = _request(tx, customer_id="C_NEVER_SEEN", terminal_id="T_NEVER_SEEN")
    out = store.get_online_features(
        features=store.get_feature_service(SERVICE), entity_rows=[request]
    ).to_dict()
    assert out["customer_avg_amount_30d"] == [None]
    assert out["terminal_fraud_risk_30d"] == [None]
    assert out["is_new_customer"] == [1.0]
    typical = NEW_CUSTOMER["customer_avg_amount_30d"]
    assert out["amount_to_avg_30d"][0] == pytest.approx(tx.amount / (typical + 1.0))


def test_historical_retrieval_is_point_in_time_correct(
    store: Any, feast_repo: Path, tiny_stream: pd.DataFrame
) -> None:
    sample = tiny_stream.iloc[len(tiny_stream) // 3 :].sample(n=25, random_state=1)
    entity_df = pd.DataFrame([_request(tx) for tx in sample.itertuples()])
    entity_df["event_timestamp"] = sample["timestamp"].to_numpy()
    with repo_directory(store, feast_repo):  # Spark resolves the tables' relative paths
        got = store.get_historical_features(
            entity_df=entity_df, features=store.get_feature_service(SERVICE)
        ).to_df()
    got = got.set_index(entity_df.index) if len(got) == len(entity_df) else got
    # Spark hands timestamps back without a zone, in its session zone (UTC).
    got["event_timestamp"] = pd.to_datetime(got["event_timestamp"]).dt.tz_localize("UTC")
    for row in got.itertuples():
        snapshot = row.event_timestamp.floor("D")  # the latest snapshot at or before t
        history = tiny_stream[
            (tiny_stream.customer_id == row.customer_id)
            & (tiny_stream.timestamp < snapshot)
            & (tiny_stream.timestamp >= snapshot - pd.Timedelta(days=7))
        ]
        assert row.customer_tx_count_7d == len(history)
        assert (history.timestamp < row.event_timestamp).all()


def test_the_bulk_sqlite_reader_returns_what_feast_returns(
    feast_repo: Path, tiny_stream: pd.DataFrame
) -> None:
    """The service's SQLite reader against Feast's provider read: known, unknown and
    repeated entities, one at a time and as a batch, values and snapshot times."""
    from app.services.features import OnlineFeatures

    bulk = OnlineFeatures.open(feast_repo, "feature_store.yaml", SERVICE)
    feast = OnlineFeatures.open(feast_repo, "feature_store.yaml", SERVICE, reader="feast")
    assert (bulk.reader, feast.reader) == ("sqlite", "feast")
    recent = tiny_stream.tail(300)
    ids = {
        "customer_id": [*recent.customer_id, "C_NEVER_SEEN", recent.customer_id.iloc[0]],
        "terminal_id": [*recent.terminal_id, "T_NEVER_SEEN", recent.terminal_id.iloc[0]],
    }
    batches = [ids] + [{k: [v[i]] for k, v in ids.items()} for i in (0, 150, 300, 301)]
    for batch in batches:
        ours, theirs = bulk.read(batch), feast.read(batch)
        assert ours.keys() == theirs.keys()
        for view in ours:
            np.testing.assert_array_equal(ours[view].values, theirs[view].values)
            np.testing.assert_array_equal(ours[view].event_seconds, theirs[view].event_seconds)
    known = bulk.read(ids)
    for view in known.values():
        assert np.isnan(view.values[-2]).all() and np.isnan(view.event_seconds[-2])
        assert not np.isnan(view.values[:-2]).all()
    bulk.close()
    feast.close()


def test_the_bulk_reader_never_creates_a_missing_database(
    feast_repo: Path, tmp_path: Path, tiny_stream: pd.DataFrame
) -> None:
    import shutil

    from app.services.features import OnlineFeatures

    repo = tmp_path / "repo"
    shutil.copytree(feast_repo, repo)
    features = OnlineFeatures.open(repo, "feature_store.yaml", SERVICE)
    (repo / "data" / "online_store.db").unlink()
    ids = {"customer_id": [tiny_stream.customer_id.iloc[-1]], "terminal_id": ["T1"]}
    with pytest.raises(Exception, match="unable to open"):
        features.read(ids)
    assert not (repo / "data" / "online_store.db").exists()
