"""The challenger in shadow through the real app: its scores reach the record, a missing
challenger changes nothing for the caller, and a full queue drops the shadow, never an
answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.api.test_rules_api import wait_for
from tests.serving import as_request

pytestmark = pytest.mark.integration


def _metric(text: str, line: str) -> float | None:
    values = [float(row.split()[-1]) for row in text.splitlines() if row.startswith(line + " ")]
    return values[0] if values else None


def _batch(recent: pd.DataFrame, n: int) -> dict[str, Any]:
    return {"transactions": [as_request(recent.iloc[i]) for i in range(n)]}


def test_shadow_scores_reach_the_record(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tiny_bundle: Path
) -> None:
    client = client_for(challenger_uri=str(tiny_bundle), record_ship_interval_ms=20)
    assert client.get("/readyz").json()["challenger"]["status"] == "scoring"
    n = 12
    answers = client.post("/v1/predict/batch", json=_batch(recent, n)).json()["results"]
    assert len(answers) == n

    def recorded() -> list[dict[str, Any]] | None:
        out = client.get("/v1/shadow").json()
        rows = out["recorded"]
        return out if rows and rows[0]["rows"] == n else None

    out = wait_for(recorded)
    assert out, "the shadow scores did not reach the record"
    version = answers[0]["model_version"]
    assert out["challenger"]["loaded"] is True and out["challenger"]["version"] == version
    summary = out["recorded"][0]
    assert summary["agreement"] == 1.0  # the same bundle as the champion
    assert out["live"]["scored"] == n and out["live"]["dropped"]["full"] == 0
    assert _metric(client.get("/metrics").text, "fraud_shadow_scored_total") == n


def test_a_missing_challenger_changes_nothing(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tmp_path: Path
) -> None:
    body = as_request(recent.iloc[3])
    plain = client_for().post("/v1/predict", json=body).json()
    other = tmp_path / "other"
    client = client_for(
        challenger_uri=str(tmp_path / "no-such-bundle"),
        audit_log=other / "predictions.sqlite",
        label_log=other / "labels.sqlite",
    )
    answer = client.post("/v1/predict", json=body)
    assert answer.status_code == 200
    keys = ("decision", "risk_level", "fraud_probability", "model_version")
    assert {k: answer.json()[k] for k in keys} == {k: plain[k] for k in keys}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"  # the challenger is informational
    assert ready["challenger"]["status"] == "unavailable"
    assert "no-such-bundle" in ready["challenger"]["detail"]
    shadow = client.get("/v1/shadow").json()["challenger"]
    assert (shadow["loaded"], shadow["version"]) == (False, None)
    assert "no-such-bundle" in shadow["problem"]


def test_a_full_shadow_queue_drops_the_shadow_not_the_answers(
    client_for: Callable[..., TestClient], recent: pd.DataFrame, tiny_bundle: Path
) -> None:
    client = client_for(challenger_uri=str(tiny_bundle), shadow_max_queued_rows=1)
    response = client.post("/v1/predict/batch", json=_batch(recent, 50))
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 50 and all("decision" in r for r in results)
    metrics = client.get("/metrics").text
    dropped = _metric(metrics, 'fraud_shadow_dropped_total{reason="full"}')
    assert dropped is not None and dropped >= 50
    assert client.get("/v1/shadow").json()["live"]["dropped"]["full"] == dropped
