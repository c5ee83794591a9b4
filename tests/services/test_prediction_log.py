"""PredictionLog: group commit, durability settings, failures reach every waiter."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from app.services.prediction_log import PredictionLog, PredictionRecord


def record(i: int) -> PredictionRecord:
    return PredictionRecord(
        f"tx-{i}", "v1", 0.25, "LOW", "approve", "model", "", f"r{i}", time.time()
    )


def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "audit.sqlite")

    async def many() -> None:
        await asyncio.gather(*(log.append([record(i)]) for i in range(200)))

    asyncio.run(many())
    assert log.count() == 200
    assert 1 <= log.commits < 200  # grouped: far fewer fsyncs than rows
    rows = sqlite3.connect(tmp_path / "audit.sqlite").execute(
        "SELECT transaction_id, model_version, fraud_probability, decision FROM predictions "
        "ORDER BY id LIMIT 1"
    )
    assert rows.fetchone() == ("tx-0", "v1", 0.25, "approve")
    settings = (
        log._db.execute("PRAGMA journal_mode").fetchone()[0],
        log._db.execute("PRAGMA synchronous").fetchone()[0],
    )
    assert settings == ("wal", 2)  # WAL, synchronous=FULL
    log.close()


def test_a_failed_write_reaches_its_waiters_and_the_log_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(tmp_path / "audit.sqlite")
    original = PredictionLog.write

    def full_disk(self: PredictionLog, rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    async def scenario() -> list[BaseException | None]:
        monkeypatch.setattr(PredictionLog, "write", full_disk)
        outcomes = await asyncio.gather(
            *(log.append([record(i)]) for i in range(5)), return_exceptions=True
        )
        monkeypatch.setattr(PredictionLog, "write", original)
        await log.append([record(99)])
        return list(outcomes)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert log.count() == 1
    log.close()


def test_old_rows_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = PredictionLog(tmp_path / "audit.sqlite", "NORMAL", retention_hours=1)
    old = record(1)._replace(scored_at=time.time() - 7200)
    log.write([old])  # the first write prunes before this row is old enough to matter...
    assert log.count() == 0  # ...no: it is inserted, then the prune removes it at once
    log.write([old])
    assert log.count() == 1  # the next prune is a minute away
    log._pruned = 0.0
    log.write([record(2)._replace(scored_at=time.time())])
    assert log.count() == 1
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    log.close()
