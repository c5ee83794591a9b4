"""Dashboard sessions: signed with the key, expiring, ended by rotating the key out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from app.dashboard.session import issue, verify
from app.dashboard.state import FailureThrottle
from app.services.api_keys import ApiKeys, key_id


def runtime_with(keys: ApiKeys) -> SimpleNamespace:
    return SimpleNamespace(keys=keys)


def test_a_token_verifies_until_it_expires() -> None:
    keys = ApiKeys(["k-one", "k-two"])
    ident = key_id("k-one")
    token = issue(b"k-one", ident, 3600, now=1000.0)
    assert verify(runtime_with(keys), token, now=1000.0) == ident  # type: ignore[arg-type]
    assert verify(runtime_with(keys), token, now=4600.0) == ident  # type: ignore[arg-type]
    assert verify(runtime_with(keys), token, now=4601.0) is None  # type: ignore[arg-type]


def test_tampered_or_foreign_tokens_fail() -> None:
    keys = ApiKeys(["k-one", "k-two"])
    rt = runtime_with(keys)
    one, two = key_id("k-one"), key_id("k-two")
    token = issue(b"k-one", one, 3600, now=1000.0)
    _, ident, expires, sig = token.split(".")
    assert verify(rt, f"v1.{ident}.{int(expires) + 1000}.{sig}", now=1000.0) is None  # type: ignore[arg-type]
    assert verify(rt, f"v1.{two}.{expires}.{sig}", now=1000.0) is None  # type: ignore[arg-type]
    forged = issue(b"not-a-key", one, 3600, now=1000.0)
    assert verify(rt, forged, now=1000.0) is None  # type: ignore[arg-type]
    for junk in ("", "v1", "v2.a.1.b", "v1.a.notanumber.b", "v1.a.1.b.c"):
        assert verify(rt, junk, now=1000.0) is None  # type: ignore[arg-type]


def test_removing_a_key_ends_its_sessions(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("old-key\nnew-key\n")
    keys = ApiKeys([], secret, refresh_seconds=0)
    token = issue(b"old-key", key_id("old-key"), 3600)
    assert verify(runtime_with(keys), token) == key_id("old-key")  # type: ignore[arg-type]
    secret.write_text("new-key\n")
    assert verify(runtime_with(keys), token) is None  # type: ignore[arg-type]


def test_failed_sign_ins_are_throttled_then_recover() -> None:
    now = [0.0]
    throttle = FailureThrottle(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait() == 0.0
        throttle.failed()
    assert throttle.wait() == 0.5
    now[0] += 0.5
    assert throttle.wait() == 0.0
