"""Floods of refused requests against the real process: every one gets its refusal code
and resident memory stays flat (docs/reliability.md, "Edge"). ``ABUSE_FLOOD_REQUESTS``
sets the count per kind (``python -m benchmarks.edge_floods`` runs 100,000)."""

from __future__ import annotations

import os

import pytest

from benchmarks.edge_floods import FLOOD_ENV, measure
from tests.abuse.conftest import Launch

pytestmark = [pytest.mark.abuse]

REQUESTS = int(os.environ.get("ABUSE_FLOOD_REQUESTS", "2000"))
# Growth allowed after a warm-up; today's parser kept a 64 KiB header per connection in
# flight and a 50 MB one took hundreds of MiB, the flat stack moves by under 1 MiB.
GROWTH_MB = 8.0
EXPECTED = {"chunked": 413, "sized": 413, "header": 431, "headers": 431}


def test_memory_stays_flat_under_floods_of_refused_requests(launch: Launch) -> None:
    server = launch(**FLOOD_ENV)
    for kind, status in EXPECTED.items():
        result = measure(server, kind, REQUESTS, warmup=300)
        assert result["statuses"] == {str(status): REQUESTS}, result
        assert result["growth_mb"] < GROWTH_MB, result
