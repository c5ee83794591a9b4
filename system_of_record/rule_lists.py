"""Rule lists editable without a deploy (blocked terminals, allow-listed customers, ...).

``rule_list_entries`` holds the values per list; every add and remove is also a row of
``rule_list_changes``, whose newest id is the lists' version: pods poll
:func:`list_entries` and reload their rule set when it changes. On PostgreSQL the
writers serialise on the changes table, so change ids commit in order and a version a
pod has seen never gains an earlier change later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from system_of_record.store import RecordStore

AddResult = Literal["added", "present"]
RemoveResult = Literal["removed", "absent"]

ADD = (
    "INSERT INTO rule_list_entries (list_name, value, added_by, added_at, note) "
    "VALUES (%s,%s,%s,%s,%s) ON CONFLICT (list_name, value) DO NOTHING"
)
REMOVE = "DELETE FROM rule_list_entries WHERE list_name = %s AND value = %s"
CHANGE = (
    "INSERT INTO rule_list_changes (list_name, value, action, changed_by, changed_at) "
    "VALUES (%s,%s,%s,%s,%s)"
)
SERIALISE = "LOCK TABLE rule_list_changes IN SHARE ROW EXCLUSIVE MODE"
VERSION = "SELECT MAX(id) FROM rule_list_changes"
ENTRIES = "SELECT list_name, value FROM rule_list_entries ORDER BY list_name, value"
DETAILS = (
    "SELECT list_name, value, added_by, added_at, note FROM rule_list_entries "
    "ORDER BY list_name, value"
)


def add_entry(
    store: RecordStore, name: str, value: str, by: str, note: str, now: datetime
) -> AddResult:
    """Add ``value`` to list ``name``: ``added``, or ``present`` (nothing changes)."""
    with store.transaction() as cursor:
        _serialise(store, cursor)
        cursor.execute(store.sql(ADD), (name, value, by, store.bind_time(now), note))
        if cursor.rowcount != 1:
            return "present"
        cursor.execute(store.sql(CHANGE), (name, value, "add", by, store.bind_time(now)))
    return "added"


def remove_entry(store: RecordStore, name: str, value: str, by: str, now: datetime) -> RemoveResult:
    """Remove ``value`` from list ``name``: ``removed``, or ``absent``."""
    with store.transaction() as cursor:
        _serialise(store, cursor)
        cursor.execute(store.sql(REMOVE), (name, value))
        if cursor.rowcount != 1:
            return "absent"
        cursor.execute(store.sql(CHANGE), (name, value, "remove", by, store.bind_time(now)))
    return "removed"


def list_entries(store: RecordStore) -> tuple[str, dict[str, list[str]]]:
    """The lists' version ("0" before any change) and their values, sorted."""
    with store.transaction() as cursor:
        cursor.execute(VERSION)
        (newest,) = cursor.fetchone()
        cursor.execute(ENTRIES)
        rows = cursor.fetchall()
    lists: dict[str, list[str]] = {}
    for name, value in rows:
        lists.setdefault(name, []).append(value)
    return str(newest or 0), lists


def entry_details(store: RecordStore) -> list[dict[str, Any]]:
    """Every entry with who added it, when and why (for operators)."""
    with store.transaction() as cursor:
        cursor.execute(DETAILS)
        rows = cursor.fetchall()
    return [
        {
            "list": name,
            "value": value,
            "added_by": by,
            "added_at": at if isinstance(at, str) else at.isoformat(),
            "note": note,
        }
        for name, value, by, at, note in rows
    ]


def _serialise(store: RecordStore, cursor: Any) -> None:
    if store.dialect == "postgresql":  # SQLite writers are serialised already
        cursor.execute(SERIALISE)
