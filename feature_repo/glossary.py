"""What each model feature means, in words, and how to show its value.

The dashboard turns reason codes into sentences with this table; it lives beside the
feature definitions so that a new feature gets its words in the same change (a test
checks that every feature of every FeatureService, and every request and velocity
feature, has an entry). ``kind`` says how a value reads:

- ``count``, ``amount``, ``km``, ``kmh``, ``hours``, ``seconds``: plain numbers with a unit
- ``ratio``: times (x), ``share``: a fraction shown as a percentage
- ``flag``: 1 yes / 0 no; ``log_amount``: log(1 + amount), shown as the amount
- ``code``: a category index (channel, entry mode, merchant category), shown as a number
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal[
    "count",
    "amount",
    "km",
    "kmh",
    "hours",
    "seconds",
    "ratio",
    "share",
    "flag",
    "log_amount",
    "code",
]


class Term(NamedTuple):
    label: str  # completes "… was <value>" / "… is unusual"
    kind: Kind


def _windows(prefix: str, what: str, kind: Kind) -> dict[str, Term]:
    return {
        f"{prefix}_{w}d": Term(f"{what} over {days}", kind)
        for w, days in ((1, "1 day"), (7, "7 days"), (30, "30 days"))
    }


FEATURES: dict[str, Term] = {
    **_windows("customer_tx_count", "the card's transactions", "count"),
    **_windows("customer_avg_amount", "the card's average amount", "amount"),
    "customer_std_amount_30d": Term("the spread of the card's amounts over 30 days", "amount"),
    "customer_avg_distance_30d": Term("the card's usual distance from home", "km"),
    "customer_usual_hour_30d": Term("the card's usual hour of day (UTC)", "hours"),
    "customer_online_share_30d": Term("the card's share of online purchases", "share"),
    **_windows("terminal_tx_count", "the terminal's transactions", "count"),
    **_windows("terminal_fraud_risk", "the terminal's known fraud rate", "share"),
    "terminal_x_km": Term("the terminal's map position (x)", "km"),
    "terminal_y_km": Term("the terminal's map position (y)", "km"),
    "log_amount": Term("the amount", "log_amount"),
    "amount_to_avg_7d": Term("the amount against the card's 7-day average", "ratio"),
    "amount_to_avg_30d": Term("the amount against the card's 30-day average", "ratio"),
    "amount_zscore_30d": Term("the amount in standard deviations above the card's mean", "ratio"),
    "hour_of_day": Term("the hour of day (UTC)", "hours"),
    "is_night": Term("a night-time purchase (before 06:00 UTC)", "flag"),
    "is_weekend": Term("a weekend purchase", "flag"),
    "hour_deviation": Term("the hours away from the card's usual time", "hours"),
    "home_distance_km": Term("the distance from the card holder's home", "km"),
    "distance_to_usual_ratio": Term("the distance against the card's usual distance", "ratio"),
    "is_online": Term("an online purchase", "flag"),
    "is_cross_border": Term("a cross-border purchase", "flag"),
    "is_manual_entry": Term("a card number typed in by hand", "flag"),
    "is_swipe_entry": Term("a magnetic-stripe swipe", "flag"),
    "entry_mode_code": Term("the entry mode", "code"),
    "merchant_category_code": Term("the merchant category", "code"),
    "is_new_customer": Term("a card with no history", "flag"),
    "vel_tx_count_10m": Term("the card's transactions in the previous 10 minutes", "count"),
    "vel_tx_count_1h": Term("the card's transactions in the previous hour", "count"),
    "vel_tx_count_24h": Term("the card's transactions in the previous 24 hours", "count"),
    "vel_amount_10m": Term("the card's spend in the previous 10 minutes", "amount"),
    "vel_amount_1h": Term("the card's spend in the previous hour", "amount"),
    "vel_amount_24h": Term("the card's spend in the previous 24 hours", "amount"),
    "vel_seconds_since_prev": Term("the time since the card's previous transaction", "seconds"),
    "vel_distinct_terminals_1h": Term("the terminals the card used in the previous hour", "count"),
    "vel_km_from_prev_terminal": Term("the distance from the previous transaction", "km"),
    "vel_speed_from_prev_kmh": Term("the travel speed implied since the previous one", "kmh"),
}


def term(feature: str) -> Term:
    """The entry for ``feature``; an unknown name reads as itself."""
    return FEATURES.get(feature, Term(feature.replace("_", " "), "count"))
