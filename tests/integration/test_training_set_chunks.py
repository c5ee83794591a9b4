"""The training set joined in time-ordered chunks equals one join: chunking bounds the
Spark driver's memory and changes no value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.inputs.feast_store import training_store
from training.training_set import historical_features

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICE = "fraud_detection_v2"


def test_chunks_give_the_same_rows_in_the_input_order(feast_repo: Path, tiny_data: Path) -> None:
    transactions = pd.read_parquet(tiny_data / "v0" / "transactions.parquet")
    sample = transactions.iloc[::40].sample(frac=1.0, random_state=3)  # shuffled: not in time order
    store = training_store(feast_repo)
    whole = historical_features(store, feast_repo, sample, SERVICE, chunk_rows=len(sample))
    chunked = historical_features(store, feast_repo, sample, SERVICE, chunk_rows=97)
    assert len(sample) > 3 * 97
    np.testing.assert_allclose(chunked.to_numpy(), whole.to_numpy(), rtol=1e-12, equal_nan=True)
    assert whole["customer_tx_count_30d"].notna().sum() > len(sample) // 2
