"""API keys: every /v1 call needs one of the configured keys; health and metrics do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.services.api_keys import key_id
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


def test_a_key_file_rotates_without_a_restart(client_for: Any, tmp_path: Path) -> None:
    secret = tmp_path / "api-keys"
    secret.write_text("old-key\n")
    client = client_for(api_keys_file=secret, api_keys_refresh_seconds=0)

    def status(key: str) -> int:
        return int(client.get("/v1/model", headers={"X-API-Key": key}).status_code)

    assert (status("old-key"), status("new-key")) == (200, 401)
    secret.write_text("old-key\nnew-key\n")  # step 1: both keys, callers move over
    assert (status("old-key"), status("new-key")) == (200, 200)
    secret.write_text("# rotated 2026-11-23\nnew-key\n")  # step 2: the old key is retired
    assert (status("old-key"), status("new-key")) == (401, 200)
    secret.write_text("")  # an empty or unreadable file never locks everyone out
    assert status("new-key") == 200
    secret.unlink()
    assert status("new-key") == 200


def test_rate_limits_are_per_key_with_retry_after(client_for: Any, recent: pd.DataFrame) -> None:
    client = client_for(api_keys="key-a,key-b", rate_limit_per_second=0.5, rate_limit_burst=3)
    body = as_request(recent.iloc[0])

    def post(key: str) -> Any:
        return client.post("/v1/predict", json=body, headers={"X-API-Key": key})

    assert [post("key-a").status_code for _ in range(3)] == [200, 200, 200]
    limited = post("key-a")
    assert limited.status_code == 429
    assert limited.json() == {
        "detail": "rate limit of 0.5 requests per second for this API key exceeded"
    }
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert post("key-b").status_code == 200  # another key has its own bucket
    assert client.post("/v1/predict", json=body).status_code == 401  # auth comes first
    assert client.get("/healthz").status_code == 200  # probes are never limited
    assert 'fraud_http_requests_total{method="POST",route="/v1/predict",status="429"} 1.0' in (
        client.get("/metrics").text
    )


def test_the_access_log_names_the_key_by_id_never_by_value(
    client_for: Any, recent: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cret-key-value"
    client = client_for(api_keys=secret, log_level="INFO")
    body = as_request(recent.iloc[0])
    assert client.post("/v1/predict", json=body, headers={"X-API-Key": secret}).status_code == 200
    assert client.post("/v1/predict", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    access = [line for line in lines if line.get("logger") == "app.access"]
    assert [(line["status"], line["api_key"]) for line in access] == [
        (200, key_id(secret)),
        (401, None),
    ]
    assert not [line for line in lines if "s3cret" in json.dumps(line) or "wrong" in str(line)]


def test_a_comment_only_key_file_means_no_keys_yet(
    client_for: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "api-keys"
    secret.write_text("# placeholder: the real keys come with the Secret\n\n")
    capsys.readouterr()
    client = client_for(api_keys_file=secret)
    assert "API key file has no keys yet" in capsys.readouterr().err
    assert client.get("/v1/model").status_code == 401
    comment = {"X-API-Key": "# placeholder: the real keys come with the Secret"}
    assert client.get("/v1/model", headers=comment).status_code == 401
