"""Poisoned variants: exact flip counts per rate and model; evaluation data untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.simulation.datasets import read_manifest
from training.simulation.poison import FLIP_MODELS, flip_count, flip_mask, poison, variant_name
from training.simulation.split import TimeSplit

LABELS = np.array([1] * 50 + [0] * 950)


@pytest.mark.parametrize("rate", [0.02, 0.08, 0.20])
def test_exact_flip_counts(rate: float) -> None:
    uniform = flip_mask(LABELS, rate, "uniform", seed=7)
    hidden = flip_mask(LABELS, rate, "hidden_fraud", seed=7)
    assert uniform.sum() == round(rate * 1000)
    assert hidden.sum() == round(rate * 50)
    assert (LABELS[hidden] == 1).all()  # hidden fraud only turns fraud into legitimate


def test_flips_are_seeded() -> None:
    a = flip_mask(LABELS, 0.08, "uniform", seed=7)
    assert np.array_equal(a, flip_mask(LABELS, 0.08, "uniform", seed=7))
    assert not np.array_equal(a, flip_mask(LABELS, 0.08, "uniform", seed=8))


def test_poison_marks_exactly_the_changed_labels() -> None:
    frame = pd.DataFrame({"is_fraud": LABELS.astype(np.int8)})
    out = poison(frame, 0.2, "uniform", seed=1)
    assert np.array_equal(out["label_flipped"], out["is_fraud"] != frame["is_fraud"])
    assert frame["is_fraud"].equals(pd.Series(LABELS.astype(np.int8)))  # input left alone


def test_unknown_model_and_rate_are_refused() -> None:
    with pytest.raises(ValueError):
        flip_count(LABELS, 0.1, "everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        flip_count(LABELS, 1.5, "uniform")


def test_variants_on_disk_cover_only_training_rows(
    tiny_data: Path, tiny_params: dict[str, Any]
) -> None:
    v0 = pd.read_parquet(tiny_data / "v0/transactions.parquet")
    parts = TimeSplit.from_params(tiny_params).assign(v0["timestamp"])
    train = v0[parts == "train"].reset_index(drop=True)
    manifest = read_manifest(tiny_data)
    assert manifest is not None
    names = {variant_name(m, r) for m in FLIP_MODELS for r in tiny_params["poison"]["rates"]}
    assert set(manifest["poisoned"]) == names
    for name in names:
        variant = pd.read_parquet(tiny_data / f"poisoned/{name}.parquet")
        assert variant["transaction_id"].equals(train["transaction_id"])
        meta = manifest["poisoned"][name]
        assert variant["label_flipped"].sum() == flip_count(
            train["is_fraud"].to_numpy(), meta["rate"], meta["flip_model"]
        )


def test_evaluation_data_stays_clean(tiny_data: Path, tiny_params: dict[str, Any]) -> None:
    v0 = pd.read_parquet(tiny_data / "v0/transactions.parquet")
    parts = TimeSplit.from_params(tiny_params).assign(v0["timestamp"])
    evaluation = v0[np.isin(parts, ["validation", "test"])]
    # Labels in the clean tables agree with the scenario that generated them.
    assert (evaluation["is_fraud"] == (evaluation["fraud_scenario"] != "none")).all()
    for path in (tiny_data / "poisoned").glob("*.parquet"):
        ids = set(pd.read_parquet(path, columns=["transaction_id"])["transaction_id"])
        assert ids.isdisjoint(evaluation["transaction_id"])
