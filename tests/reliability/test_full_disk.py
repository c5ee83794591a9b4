"""A full audit disk, for real: a tmpfs of a few hundred KiB under the audit log. Every
answer is 503 then, and ``/readyz`` must say so within the documented hysteresis
(``LOG_HEALTH_CONSECUTIVE`` failed writes in a row) and recover once space returns.
Needs root for the mount (skipped otherwise: tests/api/test_health.py covers the same
path with an injected error)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.serving import as_request

pytestmark = pytest.mark.integration

CONSECUTIVE = 3
CHECK_SECONDS = 0.1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, unmounted (lazily, even with files open) afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def _wait_for(condition: Any, timeout_s: float) -> float:
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout_s:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return time.monotonic() - began


def test_a_full_audit_disk_turns_the_pod_not_ready_and_back(
    small_disk: Path, client_for: Any, recent: pd.DataFrame
) -> None:
    """Was: 100 % of scoring answered 503 while ``/readyz`` said 200 ``ready``."""
    client = client_for(
        audit_log=small_disk / "predictions.sqlite",
        file_check_seconds=CHECK_SECONDS,
        log_health_consecutive=CONSECUTIVE,
    )
    rows = list(recent.itertuples())
    assert client.post("/v1/predict", json=as_request(rows[0])).status_code == 200
    filler = _fill(small_disk)
    failed = 0
    for i in range(200):
        body = as_request(rows[i % len(rows)], transaction_id=f"full-{i}")
        status = client.post("/v1/predict", json=body).status_code
        failed = failed + 1 if status == 503 else 0
        if client.get("/readyz").status_code == 503:
            break
    else:
        raise AssertionError("/readyz stayed 200 with the audit disk full")
    assert failed <= CONSECUTIVE  # 503 after at most that many failed answers in a row
    ready = client.get("/readyz").json()
    assert ready["status"] == "not_ready" and ready["audit_log"]["status"] == "failing"
    assert "full" in ready["audit_log"]["detail"]

    os.remove(filler)  # space returns; no traffic comes to a pod out of rotation
    waited = _wait_for(lambda: client.get("/readyz").status_code == 200, 5.0)
    assert waited < CONSECUTIVE * CHECK_SECONDS + 1.0
    print(f"/readyz 503 after {failed} failed answers; 200 again {waited:.2f} s after space")
    assert client.post("/v1/predict", json=as_request(rows[1])).status_code == 200
