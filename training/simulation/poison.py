"""Seeded label poisoning of the training portion, with two flip models.

- ``uniform``: ``round(rate * n)`` training rows, drawn uniformly, get the opposite label
  (legitimate becomes fraud and fraud becomes legitimate).
- ``hidden_fraud``: ``round(rate * n_fraud)`` fraudulent training rows are relabelled
  legitimate, as an insider or a broken chargeback feed would do.

Only training rows are ever flipped; validation and test data stay clean. The column
``label_flipped`` records the ground truth of the study and must never be a feature.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

FlipModel = Literal["uniform", "hidden_fraud"]
FLIP_MODELS: tuple[FlipModel, ...] = ("uniform", "hidden_fraud")


def flip_count(labels: np.ndarray, rate: float, model: FlipModel) -> int:
    """How many labels a flip model changes at ``rate``."""
    if not 0 <= rate <= 1:
        raise ValueError("rate must be in [0, 1]")
    if model == "uniform":
        return int(round(rate * labels.size))
    if model == "hidden_fraud":
        return int(round(rate * int((labels == 1).sum())))
    raise ValueError(f"unknown flip model {model!r}; choose from {FLIP_MODELS}")


def flip_mask(labels: np.ndarray, rate: float, model: FlipModel, seed: int) -> np.ndarray:
    """Boolean mask of the rows whose label the flip model changes."""
    rng = np.random.default_rng([seed, FLIP_MODELS.index(model), int(round(rate * 10_000))])
    candidates = np.arange(labels.size) if model == "uniform" else np.flatnonzero(labels == 1)
    chosen = rng.choice(candidates, size=flip_count(labels, rate, model), replace=False)
    mask = np.zeros(labels.size, dtype=bool)
    mask[chosen] = True
    return mask


def poison(train: pd.DataFrame, rate: float, model: FlipModel, seed: int) -> pd.DataFrame:
    """A copy of ``train`` with flipped ``is_fraud`` and the ``label_flipped`` marker."""
    labels = train["is_fraud"].to_numpy()
    mask = flip_mask(labels, rate, model, seed)
    out = train.copy()
    out["is_fraud"] = np.where(mask, 1 - labels, labels).astype(labels.dtype)
    out["label_flipped"] = mask
    return out


def variant_name(model: FlipModel, rate: float) -> str:
    """File stem of a poisoned variant, e.g. ``v0_train_uniform_08pct``."""
    return f"v0_train_{model}_{int(round(rate * 100)):02d}pct"
