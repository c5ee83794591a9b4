"""Feast definitions for fraud detection, read top-down.

Entities -> sources -> batch feature views -> request source -> on-demand view ->
the versioned FeatureService. Training (``get_historical_features``) and serving
(``get_online_features``) both go through ``fraud_detection_v1``; change it by adding a
``fraud_detection_v2``, never by editing v1 in place.
"""

from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from feature_repo.request_features import REQUEST_FEATURES

OWNER = "fraud-ml@example.com"
SNAPSHOT_TTL = timedelta(days=2)  # snapshots are daily; older than this means stale

# Entities ---------------------------------------------------------------------------
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A card holder (one card per customer in the simulator).",
    owner=OWNER,
    tags={"pii": "true"},
)
terminal = Entity(
    name="terminal",
    join_keys=["terminal_id"],
    value_type=ValueType.STRING,
    description="A merchant terminal or online merchant.",
    owner=OWNER,
    tags={"pii": "false"},
)

# Sources: daily snapshot tables written by training/features.py ----------------------
customer_snapshots = FileSource(
    name="customer_snapshots",
    path="data/customer_features.parquet",
    timestamp_field="event_timestamp",
    description="Daily customer snapshots; each row summarises transactions before it.",
    owner=OWNER,
)
terminal_snapshots = FileSource(
    name="terminal_snapshots",
    path="data/terminal_features.parquet",
    timestamp_field="event_timestamp",
    description="Daily terminal snapshots; risk uses labels older than the label delay.",
    owner=OWNER,
)

# Batch feature views ------------------------------------------------------------------
_WINDOWS = (1, 7, 30)
customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    ttl=SNAPSHOT_TTL,
    schema=[Field(name=f"customer_tx_count_{w}d", dtype=Float64) for w in _WINDOWS]
    + [Field(name=f"customer_avg_amount_{w}d", dtype=Float64) for w in _WINDOWS]
    + [
        Field(name="customer_std_amount_30d", dtype=Float64),
        Field(name="customer_avg_distance_30d", dtype=Float64),
        Field(name="customer_usual_hour_30d", dtype=Float64),
        Field(name="customer_online_share_30d", dtype=Float64),
    ],
    source=customer_snapshots,
    online=True,
    description="Spending profile over 1/7/30 days: counts, amounts, usual distance and hour.",
    owner=OWNER,
    tags={"pii": "false", "refresh": "daily"},
)
terminal_features = FeatureView(
    name="terminal_features",
    entities=[terminal],
    ttl=SNAPSHOT_TTL,
    schema=[Field(name=f"terminal_tx_count_{w}d", dtype=Float64) for w in _WINDOWS]
    + [Field(name=f"terminal_fraud_risk_{w}d", dtype=Float64) for w in _WINDOWS],
    source=terminal_snapshots,
    online=True,
    description="Terminal activity and delayed-label fraud risk over 1/7/30 days.",
    owner=OWNER,
    tags={"pii": "false", "refresh": "daily"},
)

# Request-time features ------------------------------------------------------------------
transaction_request = RequestSource(
    name="transaction_request",
    schema=[
        Field(name="amount", dtype=Float64),
        Field(name="tx_epoch_seconds", dtype=Int64),
        Field(name="distance_from_home_km", dtype=Float64),
        Field(name="is_foreign", dtype=Int64),
        Field(name="channel", dtype=String),
        Field(name="entry_mode", dtype=String),
        Field(name="merchant_category", dtype=String),
    ],
    description="What the payment switch sends with the authorisation request.",
    owner=OWNER,
)


@on_demand_feature_view(  # type: ignore[untyped-decorator]
    sources=[customer_features, transaction_request],
    schema=[Field(name=name, dtype=Float64) for name in REQUEST_FEATURES],
    mode="pandas",
    description="Amount relative to habits, time of day, distance and entry context.",
    owner=OWNER,
    tags={"pii": "false", "shared_with": "feature_repo/request_features.py"},
)
def transaction_request_features(inputs: pd.DataFrame) -> pd.DataFrame:
    # Feast rebuilds this function from its source without the module's globals,
    # so the imports live inside it.
    import pandas as pd

    from feature_repo.request_features import compute_request_features

    features = compute_request_features({c: inputs[c].to_numpy() for c in inputs.columns})
    return pd.DataFrame(features, index=inputs.index)


# The versioned feature service ----------------------------------------------------------
fraud_detection_v1 = FeatureService(
    name="fraud_detection_v1",
    features=[customer_features, terminal_features, transaction_request_features],
    description="Every model input of the v1 fraud ensemble; used by training and serving.",
    owner=OWNER,
    tags={"version": "1", "model": "fraud-ensemble"},
)
