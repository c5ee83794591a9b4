"""Process-wide settings the lifespan applies once the service is loaded."""

from __future__ import annotations

import sys
from collections.abc import Callable

from fastapi.testclient import TestClient


def test_the_gil_switch_interval_is_set_when_the_service_is_ready(
    client_for: Callable[..., TestClient],
) -> None:
    before = sys.getswitchinterval()
    try:
        client = client_for(gil_switch_interval_ms=0.5)
        assert client.get("/healthz").status_code == 200
        assert sys.getswitchinterval() == 0.0005
    finally:
        sys.setswitchinterval(before)
