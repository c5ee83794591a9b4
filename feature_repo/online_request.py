"""Build a ``get_online_features`` row from a transaction, as the demo and tests do."""

from __future__ import annotations

from typing import Any


def online_request(transaction: Any) -> dict[str, Any]:
    """Entity keys and request fields for ``get_online_features`` from a transaction row
    (any object with the simulator's column names as attributes, e.g. a pandas row)."""
    return {
        "customer_id": str(transaction.customer_id),
        "terminal_id": str(transaction.terminal_id),
        "amount": float(transaction.amount),
        "tx_epoch_seconds": int(transaction.timestamp.timestamp()),
        "distance_from_home_km": float(transaction.distance_from_home_km),
        "is_foreign": int(transaction.is_foreign),
        "channel": str(transaction.channel),
        "entry_mode": str(transaction.entry_mode),
        "merchant_category": str(transaction.merchant_category),
    }
