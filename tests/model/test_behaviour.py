"""Behavioural tests of the served model through the real app (after Made-With-ML):
directional expectations and invariances on real transactions of the tiny stream."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fraud_model.decisions import RISK_LEVELS
from tests.serving import as_request

pytestmark = pytest.mark.integration


def _score(client: TestClient, bodies: list[dict[str, object]]) -> list[dict[str, object]]:
    response = client.post("/v1/predict/batch", json={"transactions": bodies})
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


def test_a_twenty_times_larger_amount_never_lowers_the_risk_level(
    client: TestClient, recent: pd.DataFrame
) -> None:
    rows = list(recent.head(400).itertuples())
    base = _score(client, [as_request(r) for r in rows])
    larger = _score(client, [as_request(r, amount=min(r.amount * 20, 1e6)) for r in rows])
    rank = {level: i for i, level in enumerate(RISK_LEVELS)}
    lowered = [
        (r.transaction_id, b["risk_level"], x["risk_level"])
        for r, b, x in zip(rows, base, larger, strict=True)
        if rank[str(x["risk_level"])] < rank[str(b["risk_level"])]
    ]
    assert lowered == []
    raised = sum(
        rank[str(x["risk_level"])] > rank[str(b["risk_level"])]
        for b, x in zip(base, larger, strict=True)
    )
    assert raised > 0  # the amount matters at all


def test_the_transaction_id_does_not_change_the_score(
    client: TestClient, recent: pd.DataFrame
) -> None:
    # One transaction per customer: transactions of one customer scored together count
    # each other by id in the velocity features (a renamed copy of a stored transaction
    # is another transaction).
    rows = list(recent.drop_duplicates("customer_id").head(50).itertuples())
    base = _score(client, [as_request(r) for r in rows])
    renamed = _score(
        client, [as_request(r, transaction_id=f"other-{i}") for i, r in enumerate(rows)]
    )
    assert [b["fraud_probability"] for b in base] == [x["fraud_probability"] for x in renamed]
