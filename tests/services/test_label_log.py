"""LabelLog when its file disappears: the label is on record in the file at the path."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.services.file_identity import reopened_total
from app.services.label_log import LabelLog


def _labels(path: Path) -> dict[str, bool]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT transaction_id, is_fraud FROM labels").fetchall()
    return {tx: bool(fraud) for tx, fraud in rows}


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_label_after_the_file_disappears_is_in_the_file_at_the_path(
    tmp_path: Path, how: str
) -> None:
    """Was: ``recorded`` into the unlinked file, and nothing at the path."""
    path = tmp_path / "labels.sqlite"
    log = LabelLog(path)
    before = reopened_total("label_log")
    assert log.record("tx-1", True, "chargeback") == "recorded"
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        (tmp_path / "new.sqlite").write_bytes(b"")
        os.replace(tmp_path / "new.sqlite", path)
    # A repeat of a label the vanished file held is not a duplicate of the new file.
    assert log.record("tx-1", True, "chargeback") == "recorded"
    assert log.record("tx-2", False, "review") == "recorded"
    assert _labels(path) == {"tx-1": True, "tx-2": False}
    assert reopened_total("label_log") == before + 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT reason FROM file_gaps").fetchall() == [(how,)]
    log.close()


def test_an_idle_label_log_is_reopened_and_probed(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    log = LabelLog(path, consecutive=2)
    path.unlink()
    log.check()
    assert path.exists() and log.health.writable
    assert log.counts() == {"labels": 0, "conflicts": 0}
    log.close()
