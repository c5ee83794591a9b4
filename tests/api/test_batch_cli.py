"""``python -m app.batch``: every row out, in order, scored exactly as the API scores it."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.batch import main
from tests.serving import as_request

pytestmark = pytest.mark.integration


def test_batch_scores_a_csv_like_the_api(
    client: TestClient, recent: pd.DataFrame, tiny_bundle: Path, feast_repo: Path, tmp_path: Path
) -> None:
    rows = recent.head(30).copy()
    rows["is_foreign"] = rows["is_foreign"].astype(int)
    rows["timestamp"] = rows["timestamp"].astype(str)  # "2025-... 12:00:00+00:00"
    rows = rows.drop(columns=["is_fraud", "fraud_scenario"])
    bad = rows.head(2).copy()
    bad.loc[bad.index[0], "amount"] = "abc"
    bad.loc[bad.index[1], "customer_id"] = "has space"
    table = pd.concat([rows.head(10), bad, rows.iloc[10:]], ignore_index=True)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    table.to_csv(source, index=False)

    main(
        ["--in", str(source), "--out", str(target), "--chunk", "7"]
        + ["--bundle", str(tiny_bundle), "--feature-repo", str(feast_repo)]
    )

    with target.open(newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [r["transaction_id"] for r in out] == table.transaction_id.astype(str).tolist()
    errors = [r["error"] for r in out]
    assert errors[10].startswith("amount:") and errors[11].startswith("customer_id:")
    assert "abc" not in errors[10] and "has space" not in errors[11]
    assert sum(bool(e) for e in errors) == 2
    api = client.post(
        "/v1/predict/batch",
        json={"transactions": [as_request(r) for r in recent.head(30).itertuples()]},
    ).json()["results"]
    scored = [r for r in out if not r["error"]]
    for row, answer in zip(scored, api, strict=True):
        assert float(row["fraud_probability"]) == pytest.approx(
            answer["fraud_probability"], abs=1e-6
        )
        assert row["decision"] == answer["decision"]
        assert row["reasons"] == ";".join(r["code"] for r in answer["reasons"])
