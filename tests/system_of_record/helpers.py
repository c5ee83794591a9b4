"""Stores on both engines and decision rows for the system-of-record tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from system_of_record.rows import DecisionRow
from system_of_record.store import RecordStore, open_store

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    """A fresh store on the engine ``request.param`` names."""
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    url, password = request.getfixturevalue("postgres_url")
    return open_store(url, password)


def decision(
    i: int,
    when: datetime = T0,
    probability: float | None = 0.1,
    decided: str = "approve",
    features: bytes | None = None,
    model_decided: str = "approve",
) -> DecisionRow:
    """Transaction ``tx-i`` with the issue-27 columns filled in."""
    return DecisionRow(
        f"tx-{i}", f"C{i % 3}", f"T{i % 2}", when, 10.0 + i, None if i % 2 else "grocery",
        "online", "chip", bool(i % 2), 1.5, "fraud_detection_v2", "m1", probability, "LOW",
        decided, "model", "", f"req-{i}", when + timedelta(milliseconds=5),
        model_decided, "VELOCITY_CAP" if decided != "approve" else "", "2026-12-06.1+lists.3",
        "velocity_cap" if decided != "approve" else "", features,
    )  # fmt: skip
