"""ApiKeys: fixed and file keys, rotation on change, ids that never reveal a key."""

from __future__ import annotations

import os
from pathlib import Path

from app.services.api_keys import ApiKeys, key_id, parse_keys


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ids_are_short_stable_and_not_the_key() -> None:
    assert key_id("abc") == key_id("abc") != key_id("abd")
    assert len(key_id("abc")) == 12 and "abc" not in key_id("abc")


def test_parse_keys_skips_blanks_and_comments() -> None:
    assert parse_keys("# header\n\n  k1  \nk2\n#k3\n") == ("k1", "k2")


def test_no_configuration_means_open_and_a_missing_file_means_closed(tmp_path: Path) -> None:
    assert not ApiKeys([]).enabled
    closed = ApiKeys([], tmp_path / "absent")
    assert closed.enabled and closed.check("anything") is None and closed.check(None) is None


def test_file_changes_are_seen_after_the_refresh_interval(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("one\n")
    clock = Clock()
    keys = ApiKeys(["fixed"], secret, refresh_seconds=10, clock=clock)
    assert keys.check("one") == key_id("one") and keys.check("fixed") == key_id("fixed")
    secret.write_text("two\n")
    os.utime(secret, ns=(1, 1))  # a different mtime even on a coarse clock
    clock.now = 5.0
    assert keys.check("two") is None  # not re-read yet: no stat per request
    clock.now = 10.0
    assert keys.check("two") == key_id("two") and keys.check("one") is None
    assert keys.check("fixed") == key_id("fixed")  # environment keys stay
    assert sorted(keys.ids()) == sorted([key_id("fixed"), key_id("two")])


def test_an_emptied_file_keeps_the_last_keys(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("only\n")
    keys = ApiKeys([], secret, refresh_seconds=0)
    secret.write_text("\n")
    assert keys.check("only") == key_id("only")
    secret.unlink()
    assert keys.check("only") == key_id("only")
    assert keys.check("") is None and keys.check("onl") is None and keys.check("only ") is None
