"""API keys: every /v1 call needs one of the configured keys; health and metrics do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.serving import as_request

pytestmark = pytest.mark.integration


def test_keys_are_enforced_on_v1_only(client_for: Any, recent: pd.DataFrame) -> None:
    client = client_for(api_keys="old-key,new-key")
    body = as_request(recent.iloc[0])
    missing = client.post("/v1/predict", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "ApiKey"
    assert client.post("/v1/predict", json=body, headers={"X-API-Key": "nope"}).status_code == 401
    assert client.get("/v1/model", headers={"X-API-Key": "old-ke"}).status_code == 401
    for key in ("old-key", "new-key"):  # both keys work while they rotate
        assert client.post("/v1/predict", json=body, headers={"X-API-Key": key}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_keys_from_a_mounted_file(client_for: Any, tmp_path: Path) -> None:
    secret = tmp_path / "api-keys"
    secret.write_text("rotated-key\n")
    client = client_for(api_keys_file=secret)
    assert client.get("/v1/model").status_code == 401
    assert client.get("/v1/model", headers={"X-API-Key": "rotated-key"}).status_code == 200


def test_the_local_demo_runs_without_keys(client_for: Any, recent: pd.DataFrame) -> None:
    client = client_for(api_keys=None)
    assert client.post("/v1/predict", json=as_request(recent.iloc[0])).status_code == 200
