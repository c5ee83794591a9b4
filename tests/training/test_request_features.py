"""Request-time features: one definition, same answer for one row or a batch, safe defaults."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from feature_repo.request_features import (
    ENTRY_MODES,
    MERCHANT_CATEGORIES,
    NEW_CUSTOMER,
    REQUEST_FEATURES,
    compute_request_features,
)

MONDAY_NOON = int(pd.Timestamp("2025-01-06T12:00:00Z").timestamp())
KNOWN = {
    "customer_tx_count_30d": 40.0,
    "customer_avg_amount_7d": 50.0,
    "customer_avg_amount_30d": 40.0,
    "customer_std_amount_30d": 9.0,
    "customer_avg_distance_30d": 4.0,
    "customer_usual_hour_30d": 13.0,
}


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "amount": 99.0,
        "tx_epoch_seconds": MONDAY_NOON,
        "channel": "in_person",
        "entry_mode": "chip",
        "merchant_category": "grocery",
        "is_foreign": 0,
        "distance_from_home_km": 9.0,
        **KNOWN,
    }
    row.update(overrides)
    return row


def test_values_for_a_known_customer() -> None:
    f = {k: float(v[0]) for k, v in compute_request_features(_row()).items()}
    assert f["log_amount"] == pytest.approx(math.log1p(99))
    assert f["amount_to_avg_30d"] == pytest.approx(99 / 41)
    assert f["amount_zscore_30d"] == pytest.approx((99 - 40) / 10)
    assert f["hour_of_day"] == 12 and f["is_night"] == 0 and f["is_weekend"] == 0
    assert f["hour_deviation"] == 1
    assert f["distance_to_usual_ratio"] == pytest.approx(9 / 5)
    assert f["entry_mode_code"] == ENTRY_MODES.index("chip")
    assert f["merchant_category_code"] == MERCHANT_CATEGORIES.index("grocery")
    assert f["is_new_customer"] == 0


def test_batch_equals_row_by_row() -> None:
    rows = [
        _row(),
        _row(
            amount=5.0,
            channel="online",
            entry_mode="manual",
            tx_epoch_seconds=MONDAY_NOON - 11 * 3600,
        ),
        _row(customer_tx_count_30d=float("nan"), merchant_category="casino", is_foreign=1),
        _row(tx_epoch_seconds=MONDAY_NOON + 5 * 86_400, customer_usual_hour_30d=23.5),
    ]
    batch = compute_request_features(pd.DataFrame(rows).to_dict(orient="list"))
    for i, row in enumerate(rows):
        single = compute_request_features(row)
        for name in REQUEST_FEATURES:
            assert batch[name][i] == pytest.approx(single[name][0]), name


def test_new_customer_gets_documented_defaults() -> None:
    unknown = compute_request_features(
        {"amount": 99.0, "tx_epoch_seconds": MONDAY_NOON, **dict.fromkeys(KNOWN, np.nan)}
    )
    assert unknown["is_new_customer"][0] == 1
    assert unknown["amount_to_avg_30d"][0] == pytest.approx(
        99 / (NEW_CUSTOMER["customer_avg_amount_30d"] + 1)
    )
    assert all(np.isfinite(v).all() for v in unknown.values())


def test_unknown_categories_map_to_their_own_code() -> None:
    f = compute_request_features(
        _row(entry_mode="telepathy", merchant_category="casino", channel="?")
    )
    assert f["entry_mode_code"][0] == len(ENTRY_MODES)
    assert f["merchant_category_code"][0] == len(MERCHANT_CATEGORIES)
    assert f["is_online"][0] == 0


def test_night_weekend_and_wrapped_hour_deviation() -> None:
    saturday_3am = MONDAY_NOON + 5 * 86_400 - 9 * 3600
    f = compute_request_features(_row(tx_epoch_seconds=saturday_3am, customer_usual_hour_30d=23.0))
    assert f["is_night"][0] == 1 and f["is_weekend"][0] == 1
    assert f["hour_deviation"][0] == pytest.approx(4.0)  # 23h -> 3h wraps around midnight
