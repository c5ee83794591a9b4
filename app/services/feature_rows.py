"""Assemble model inputs from request fields and looked-up batch features (no Feast here).

Every transaction gets every feature of the FeatureService by name. Missing batch values
stay NaN (the scorer imputes the bundle's new-entity defaults, as training did) and each
transaction records why in ``degraded``:

- ``<view>:new_entity``   the store has no snapshot for this customer or terminal
- ``<view>:stale``        the snapshot is older than the view's TTL at the transaction time
                          (its values are still used: an old profile beats none)
- ``feature_store:timeout`` / ``feature_store:error`` / ``feature_store:busy``
                          the lookup failed as a whole; only request fields were used
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.services.features import ViewSpec, ViewValues
from app.services.scoring.arrays import FloatArray
from feature_repo.request_features import REQUEST_DEFAULTS, compute_request_features


class RequestFields(Protocol):
    """What the payment switch sends (``app.schemas.TransactionIn`` satisfies it)."""

    customer_id: str
    terminal_id: str
    amount: float
    merchant_category: str | None
    channel: str
    entry_mode: str
    is_foreign: bool
    distance_from_home_km: float

    @property
    def epoch_seconds(self) -> float: ...


@dataclass(frozen=True)
class FeatureRows:
    """Named feature columns (n values each) and per-transaction degradation flags."""

    columns: dict[str, FloatArray]
    degraded: list[list[str]]

    def matrix(self, names: Sequence[str]) -> FloatArray:
        """An n x len(names) matrix in the given order; unknown names are all NaN."""
        n = len(self.degraded)
        return np.column_stack([self.columns.get(name, np.full(n, np.nan)) for name in names])


def entity_ids(transactions: Sequence[RequestFields]) -> dict[str, list[str]]:
    """Join key -> one id per transaction."""
    return {
        "customer_id": [t.customer_id for t in transactions],
        "terminal_id": [t.terminal_id for t in transactions],
    }


def request_columns(transactions: Sequence[RequestFields]) -> dict[str, Any]:
    """Request fields as the shared ``compute_request_features`` expects them."""
    default_category = REQUEST_DEFAULTS["merchant_category"]
    return {
        "amount": np.fromiter((t.amount for t in transactions), np.float64, len(transactions)),
        "tx_epoch_seconds": np.fromiter(
            (t.epoch_seconds for t in transactions), np.float64, len(transactions)
        ),
        "distance_from_home_km": np.fromiter(
            (t.distance_from_home_km for t in transactions), np.float64, len(transactions)
        ),
        "is_foreign": np.fromiter(
            (float(t.is_foreign) for t in transactions), np.float64, len(transactions)
        ),
        "channel": [t.channel for t in transactions],
        "entry_mode": [t.entry_mode for t in transactions],
        "merchant_category": [t.merchant_category or default_category for t in transactions],
    }


def assemble(
    transactions: Sequence[RequestFields],
    views: Sequence[ViewSpec],
    looked_up: Mapping[str, ViewValues] | None,
    failure: str | None = None,
) -> FeatureRows:
    """Every feature of every transaction; ``looked_up`` is None when the lookup failed."""
    n = len(transactions)
    request = request_columns(transactions)
    degraded: list[list[str]] = [[] for _ in range(n)]
    columns: dict[str, FloatArray] = {}
    for spec in views:
        found = looked_up.get(spec.name) if looked_up is not None else None
        if found is None:
            for name in spec.features:
                columns[name] = np.full(n, np.nan)
            continue
        for j, name in enumerate(spec.features):
            columns[name] = found.values[:, j]
        unknown = np.isnan(found.event_seconds)
        stale = (
            (request["tx_epoch_seconds"] - found.event_seconds > spec.ttl_seconds)
            if spec.ttl_seconds > 0
            else np.zeros(n, dtype=bool)
        )
        for i in np.flatnonzero(unknown):
            degraded[i].append(f"{spec.name}:new_entity")
        for i in np.flatnonzero(stale & ~unknown):
            degraded[i].append(f"{spec.name}:stale")
    if failure is not None:
        for flags in degraded:
            flags.append(f"feature_store:{failure}")
    columns.update(compute_request_features({**request, **columns}))
    return FeatureRows(columns, degraded)
