"""PredictionLog: group commit, durability settings, failures reach every waiter."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from app.services.file_identity import reopened_total
from app.services.prediction_log import PredictionLog, PredictionRecord


def record(i: int) -> PredictionRecord:
    now = time.time()
    return PredictionRecord(
        f"tx-{i}", "v1", 0.25, "LOW", "approve", "model", "", f"r{i}", now,
        f"C{i % 7}", f"T{i % 5}", now - 1, 12.5, None, "card_present", "chip", False, 3.0,
        "fraud_detection_v2",
    )  # fmt: skip


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


def test_old_rows_are_pruned_once_shipped(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "audit.sqlite", "NORMAL", retention_hours=1)
    old = record(1)._replace(scored_at=time.time() - 7200)
    log.write([old])  # the first write prunes, but an unshipped row is never pruned
    assert log.count() == 1
    log.mark_shipped(1)  # now it is in the system of record
    log.write([old])
    assert log.count() == 2  # the next prune is a minute away
    log._pruned = 0.0
    log.write([record(2)._replace(scored_at=time.time())])
    assert log.count() == 2  # the shipped old row went; the unshipped old one stays
    assert log.backlog == 2
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    log.close()


# --- files that disappear (docs/reliability.md, "Files that disappear") ----------------


def _ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT transaction_id FROM predictions")]


def _vanish(path: Path, how: str) -> None:
    """Delete the database with its -wal and -shm (``rm audit.sqlite*``), or move an
    empty file over it (``mv``: a replaced file, the old -wal left behind)."""
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        other = path.with_name("other.sqlite")
        other.write_bytes(b"")
        os.replace(other, path)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_write_after_the_file_disappears_lands_in_the_file_at_the_path(
    tmp_path: Path, how: str
) -> None:
    """Was: acknowledged into the unlinked file, so nothing was at the path."""
    path = tmp_path / "audit.sqlite"
    log = PredictionLog(path)
    before = reopened_total("audit_log")

    async def scenario() -> None:
        await log.append([record(1)])
        _vanish(path, how)
        await asyncio.gather(*(log.append([record(i)]) for i in range(2, 12)))

    asyncio.run(scenario())
    assert sorted(_ids(path)) == sorted(f"tx-{i}" for i in range(2, 12))
    assert reopened_total("audit_log") == before + 1
    with sqlite3.connect(path) as db:
        (gap,) = db.execute("SELECT reason, previous_file, last_verified_at FROM file_gaps")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert gap[0] == how and ":" in gap[1] and gap[2] <= time.time()
    log.close()


def test_an_idle_log_is_reopened_by_the_periodic_check(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = PredictionLog(path)
    asyncio.run(log.append([record(1)]))
    _vanish(path, "deleted")
    log.check()
    assert path.exists() and _ids(path) == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT reason FROM file_gaps").fetchall() == [("deleted",)]
    log.close()


def test_failed_writes_turn_the_log_failing_after_consecutive_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write outcomes on the request path feed the readiness state at once."""
    log = PredictionLog(tmp_path / "audit.sqlite", consecutive=3)
    original = PredictionLog._commit

    def full_disk(self: PredictionLog, rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    async def appends(n: int) -> None:
        for i in range(n):
            with contextlib.suppress(sqlite3.OperationalError):
                await log.append([record(i)])

    monkeypatch.setattr(PredictionLog, "_commit", full_disk)
    asyncio.run(appends(2))
    assert log.health.writable  # two in a row: not yet
    asyncio.run(appends(1))
    assert not log.health.writable
    assert "disk is full" in (log.health.detail or "")
    monkeypatch.setattr(PredictionLog, "_commit", original)
    asyncio.run(appends(2))
    assert not log.health.writable
    asyncio.run(appends(1))
    assert log.health.writable
    log.close()
