"""ApiKeys: fixed and file keys, rotation on change, ids that never reveal a key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings
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


def test_a_comment_only_key_file_is_no_key(tmp_path: Path) -> None:
    """Settings (the gke start-up check) and ApiKeys read the file with one parser."""
    secret = tmp_path / "api-keys"
    secret.write_text("# keys go here, one per line\n\n   \n  # rotated 2026-11-23\n")
    assert Settings(api_keys_file=secret).keys == ()
    with pytest.raises(ValidationError, match="needs API keys"):
        Settings(
            environment="gke",
            api_keys_file=secret,
            pii_hash_key="pepper",
            record_url="postgresql://app@127.0.0.1:1/fraud",
        )
    keys = ApiKeys([], secret)
    assert keys.enabled and keys.ids() == []
    assert keys.check("# keys go here, one per line") is None
    secret.write_text("# current\n  k1 \n\n#k0\nk2\n")
    assert Settings(api_keys_file=secret, api_keys="k3, ").keys == ("k3", "k1", "k2")
    assert Settings(
        environment="gke",
        api_keys_file=secret,
        pii_hash_key="pepper",
        record_url="postgresql://app@127.0.0.1:1/fraud",
    ).keys
    assert ApiKeys([], secret).ids() == [key_id("k1"), key_id("k2")]
