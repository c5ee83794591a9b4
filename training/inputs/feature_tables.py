"""The batch features' configuration and names: the window lengths and the label delay,
and the columns of the customer and terminal snapshot tables that the Spark feature job
(:mod:`training.featurejob`) computes. Stages import this module; it imports no stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FeatureConfig:
    """Window lengths and the label delay; ``params.yaml`` section ``features``."""

    windows_days: tuple[int, ...] = (1, 7, 30)
    label_delay_days: int = 7

    @classmethod
    def from_params(cls, features: Mapping[str, Any]) -> FeatureConfig:
        """From ``params.yaml`` section ``features`` (its ``spark`` subsection aside)."""
        return cls(tuple(features["windows_days"]), int(features["label_delay_days"]))

    def __post_init__(self) -> None:
        if 30 not in self.windows_days or 7 not in self.windows_days:
            raise ValueError("windows_days must include 7 and 30 (request features use them)")


def customer_feature_names(config: FeatureConfig) -> list[str]:
    names = [f"customer_tx_count_{w}d" for w in config.windows_days]
    names += [f"customer_avg_amount_{w}d" for w in config.windows_days]
    return names + [
        "customer_std_amount_30d",
        "customer_avg_distance_30d",
        "customer_usual_hour_30d",
        "customer_online_share_30d",
    ]


def terminal_feature_names(config: FeatureConfig) -> list[str]:
    return [f"terminal_tx_count_{w}d" for w in config.windows_days] + [
        f"terminal_fraud_risk_{w}d" for w in config.windows_days
    ]
