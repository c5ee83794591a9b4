"""Request-time features: the one definition shared by training, Feast and serving.

These features need the transaction itself (amount, time, context the payment switch
knows) and, for some, the customer's batch features. Feast's on-demand feature view
``transaction_request_features`` calls :func:`compute_request_features` for training
(``get_historical_features``) and online lookups; the service may call it directly on
the looked-up values. Either way the arithmetic below is the only copy.

Times are UTC. Inputs may be scalars or equal-length arrays; missing batch features
(NaN, e.g. a new customer) fall back to the documented defaults in ``NEW_CUSTOMER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feature_repo.vocabulary import CHANNELS, ENTRY_MODES, MERCHANT_CATEGORIES

# Request fields (Feast RequestSource "transaction_request") and their defaults when the
# payment switch does not send them: the most common value of each. (An "unknown"
# merchant category would be a code the model never saw in training.)
REQUEST_DEFAULTS: dict[str, Any] = {
    "channel": "in_person",
    "entry_mode": "chip",
    "merchant_category": "grocery",
    "is_foreign": 0,
    "distance_from_home_km": 0.0,
}

# Customer batch features the request-time features read, and the values used for a
# customer the feature store does not know (no history yet): no transactions, and the
# habits of a typical customer (medians of the v0 training set, rounded) rather than
# zeros, so that a new card's first purchase is not read as "many times its average".
NEW_CUSTOMER: dict[str, float] = {
    "customer_tx_count_30d": 0.0,
    "customer_avg_amount_7d": 70.0,
    "customer_avg_amount_30d": 70.0,
    "customer_std_amount_30d": 65.0,
    "customer_avg_distance_30d": 20.0,
    "customer_usual_hour_30d": 13.0,
}

REQUEST_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_to_avg_7d",
    "amount_to_avg_30d",
    "amount_zscore_30d",
    "hour_of_day",
    "is_night",
    "is_weekend",
    "hour_deviation",
    "home_distance_km",
    "distance_to_usual_ratio",
    "is_online",
    "is_cross_border",
    "is_manual_entry",
    "is_swipe_entry",
    "entry_mode_code",
    "merchant_category_code",
    "is_new_customer",
)

_SECONDS_PER_DAY = 86_400
_EPOCH_THURSDAY = 3  # 1970-01-01 was a Thursday; Monday is weekday 0


# Value of every batch feature for an entity the online store does not know (a new customer
# or terminal: no history yet). Training imputes missing snapshots the same way.
def new_entity_default(feature: str) -> float:
    """Default of a customer or terminal batch feature when the entity has no snapshot."""
    return NEW_CUSTOMER.get(feature, 0.0)


def _codes(values: Any, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``vocabulary``; unknown values get ``len(vocabulary)``."""
    lookup = {name: i for i, name in enumerate(vocabulary)}
    flat = np.atleast_1d(np.asarray(values, dtype=object))
    return np.fromiter(
        (lookup.get(str(v), len(vocabulary)) for v in flat), dtype=np.float64, count=flat.size
    )


def _numeric(columns: Mapping[str, Any], name: str, default: float, n: int) -> np.ndarray:
    raw = columns.get(name)
    if raw is None:
        return np.full(n, default, dtype=np.float64)
    values = np.atleast_1d(np.asarray(raw, dtype=np.float64))
    if values.size == 1 and n > 1:
        values = np.repeat(values, n)
    return np.where(np.isfinite(values), values, default)


def compute_request_features(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Compute every feature in ``REQUEST_FEATURES`` for one or many transactions.

    ``columns`` needs ``amount`` and ``tx_epoch_seconds`` (UTC); the other request
    fields and the customer batch features are optional and defaulted when absent/NaN.
    """
    amount = np.atleast_1d(np.asarray(columns["amount"], dtype=np.float64))
    n = amount.size
    epoch = _numeric(columns, "tx_epoch_seconds", 0.0, n)
    has_history = _numeric(columns, "customer_tx_count_30d", 0.0, n) > 0
    customer = {
        name: np.where(has_history, _numeric(columns, name, default, n), default)
        for name, default in NEW_CUSTOMER.items()
    }

    seconds_of_day = np.mod(epoch, _SECONDS_PER_DAY)
    hour = seconds_of_day / 3600.0
    weekday = np.mod(np.floor(epoch / _SECONDS_PER_DAY) + _EPOCH_THURSDAY, 7)
    hour_gap = np.abs(hour - customer["customer_usual_hour_30d"])
    distance = np.clip(
        _numeric(columns, "distance_from_home_km", REQUEST_DEFAULTS["distance_from_home_km"], n),
        0.0,
        None,
    )
    channel = columns.get("channel", REQUEST_DEFAULTS["channel"])
    entry_code = _codes(columns.get("entry_mode", REQUEST_DEFAULTS["entry_mode"]), ENTRY_MODES)

    features = {
        "log_amount": np.log1p(amount),
        "amount_to_avg_7d": amount / (customer["customer_avg_amount_7d"] + 1.0),
        "amount_to_avg_30d": amount / (customer["customer_avg_amount_30d"] + 1.0),
        "amount_zscore_30d": (amount - customer["customer_avg_amount_30d"])
        / (customer["customer_std_amount_30d"] + 1.0),
        "hour_of_day": hour,
        "is_night": (hour < 6.0).astype(np.float64),
        "is_weekend": (weekday >= 5).astype(np.float64),
        "hour_deviation": np.minimum(hour_gap, 24.0 - hour_gap),
        "home_distance_km": distance,
        "distance_to_usual_ratio": distance / (customer["customer_avg_distance_30d"] + 1.0),
        "is_online": (_codes(channel, CHANNELS) == CHANNELS.index("online")).astype(np.float64),
        "is_cross_border": (
            _numeric(columns, "is_foreign", float(REQUEST_DEFAULTS["is_foreign"]), n) > 0
        ).astype(np.float64),
        "is_manual_entry": (entry_code == ENTRY_MODES.index("manual")).astype(np.float64),
        "is_swipe_entry": (entry_code == ENTRY_MODES.index("swipe")).astype(np.float64),
        "entry_mode_code": entry_code,
        "merchant_category_code": _codes(
            columns.get("merchant_category", REQUEST_DEFAULTS["merchant_category"]),
            MERCHANT_CATEGORIES,
        ),
        "is_new_customer": (~has_history).astype(np.float64),
    }
    return {name: _broadcast(features[name], n) for name in REQUEST_FEATURES}


def _broadcast(values: np.ndarray, n: int) -> np.ndarray:
    values = np.atleast_1d(values)
    return np.repeat(values, n) if values.size == 1 and n > 1 else values
