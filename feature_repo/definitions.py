"""Feast definitions for fraud detection, read top-down.

Entities -> sources -> batch feature views -> request source -> on-demand views ->
the versioned FeatureServices. Training (``get_historical_features``) and serving
(``get_online_features``) both go through one FeatureService, named in ``params.yaml``
and the service's settings. ``fraud_detection_v2`` adds the streaming velocity features
(``customer_velocity``, fed by a PushSource) to everything in ``fraud_detection_v1``;
v1 is left as it was, so a v1 model still scores. Change a service by adding a new
version, never by editing one in place.
"""

from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    PushSource,
    RequestSource,
)
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Float64, Int64, String
from feast.value_type import ValueType

from feature_repo.request_features import REQUEST_FEATURES
from feature_repo.velocity import NO_PREVIOUS_SECONDS, VELOCITY_FEATURES

OWNER = "fraud-ml@example.com"
SNAPSHOT_TTL = timedelta(days=2)  # snapshots are daily; older than this means stale
REPO = Path(__file__).resolve().parent
PARTITION_COLUMN = "date"  # the feature job's Hive partitions: UTC date of event_timestamp

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

# Sources: tables written by the Spark feature job (training/features.py), read by
# Feast's Spark offline store. Paths stay relative to the repo (the registry is published
# with the tables: feature_repo/online_load.py resolves them where it runs).


def table_source(name: str, path: str, description: str) -> SparkSource:
    """A Parquet table of the repo: a dataset partitioned by ``date=YYYY-MM-DD`` is
    pruned by Spark to the dates a query can use; a single file (no partition column)
    is read whole."""
    partitioned = (REPO / path).is_dir()
    return SparkSource(
        name=name,
        path=path,
        file_format="parquet",
        timestamp_field="event_timestamp",
        date_partition_column=PARTITION_COLUMN if partitioned else None,
        description=description,
        owner=OWNER,
    )


customer_snapshots = table_source(
    "customer_snapshots",
    "data/customer_features.parquet",
    "Daily customer snapshots; each row summarises transactions before it.",
)
terminal_snapshots = table_source(
    "terminal_snapshots",
    "data/terminal_features.parquet",
    "Daily terminal snapshots; risk uses labels older than the label delay.",
)
terminal_locations = table_source(
    "terminal_locations",
    "data/terminal_locations.parquet",
    "Terminal coordinates (km on the simulated map); reference data.",
)

# The streaming source: the service pushes a customer's velocity state after every
# scored transaction; the batch source holds the same state after every historical
# transaction (training/features.py), for point-in-time training sets and backfills.
customer_velocity_log = table_source(
    "customer_velocity_log",
    "data/customer_velocity.parquet",
    "Velocity state after every transaction (feature_repo/velocity.py).",
)
customer_velocity_push = PushSource(
    name="customer_velocity_push",
    batch_source=customer_velocity_log,
    description="Velocity state pushed by the scoring service (or a stream consumer).",
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

terminal_location = FeatureView(
    name="terminal_location",
    entities=[terminal],
    ttl=timedelta(0),  # reference data: never stale
    schema=[Field(name="terminal_x_km", dtype=Float64), Field(name="terminal_y_km", dtype=Float64)],
    source=terminal_locations,
    online=True,
    description="Where a terminal is; the velocity features measure moves between terminals.",
    owner=OWNER,
    tags={"pii": "false", "refresh": "on change"},
)

# Streaming feature view ------------------------------------------------------------------
customer_velocity = FeatureView(
    name="customer_velocity",
    entities=[customer],
    # Older than this, the previous transaction no longer counts (velocity.py).
    ttl=timedelta(seconds=NO_PREVIOUS_SECONDS),
    schema=[
        Field(name="vel_event_seconds", dtype=Array(Float64)),
        Field(name="vel_event_amounts", dtype=Array(Float64)),
        Field(name="vel_event_terminals", dtype=Array(String)),
        Field(name="vel_event_x_km", dtype=Array(Float64)),
        Field(name="vel_event_y_km", dtype=Array(Float64)),
        Field(name="vel_event_ids", dtype=Array(String)),
    ],
    source=customer_velocity_push,
    online=True,
    description="A customer's transactions of the last 24 h (and the one before): velocity state.",
    owner=OWNER,
    tags={"pii": "false", "refresh": "push, per transaction"},
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


@on_demand_feature_view(  # type: ignore[untyped-decorator]
    sources=[customer_velocity, terminal_location, transaction_request],
    schema=[Field(name=name, dtype=Float64) for name in VELOCITY_FEATURES],
    mode="pandas",
    description="Counts and amounts in 10 min / 1 h / 24 h, gap, terminals and move "
    "since the previous transaction.",
    owner=OWNER,
    tags={"pii": "false", "shared_with": "feature_repo/velocity.py"},
)
def velocity_features(inputs: pd.DataFrame) -> pd.DataFrame:
    # Rebuilt by Feast without the module's globals, like transaction_request_features.
    import pandas as pd

    from feature_repo.velocity import compute_velocity_features, states_from_columns

    columns = {c: inputs[c].tolist() for c in inputs.columns}
    features = compute_velocity_features(
        states_from_columns(columns, len(inputs)),
        inputs["tx_epoch_seconds"].to_numpy(dtype="float64"),
        inputs["terminal_x_km"].to_numpy(dtype="float64"),
        inputs["terminal_y_km"].to_numpy(dtype="float64"),
    )
    return pd.DataFrame(features, index=inputs.index)


# The versioned feature services ----------------------------------------------------------
fraud_detection_v1 = FeatureService(
    name="fraud_detection_v1",
    features=[customer_features, terminal_features, transaction_request_features],
    description="Every model input of the v1 fraud ensemble; used by training and serving.",
    owner=OWNER,
    tags={"version": "1", "model": "fraud-ensemble"},
)
fraud_detection_v2 = FeatureService(
    name="fraud_detection_v2",
    features=[
        customer_features,
        terminal_features,
        transaction_request_features,
        velocity_features,
    ],
    description="v1 plus the streaming velocity features; used by training and serving.",
    owner=OWNER,
    tags={"version": "2", "model": "fraud-ensemble"},
)
