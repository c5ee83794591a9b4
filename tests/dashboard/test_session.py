"""Dashboard sessions: signed with the key, expiring, ended by rotating the key out or
signing out; the bounded guards behind them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.dashboard.guards import Buckets, Revocations, UploadSlot, client_address
from app.dashboard.session import Session, issue, read, verify
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
    _, ident, sid, expires, sig = token.split(".")
    assert verify(rt, f"v2.{ident}.{sid}.{int(expires) + 1000}.{sig}", now=1000.0) is None  # type: ignore[arg-type]
    assert verify(rt, f"v2.{two}.{sid}.{expires}.{sig}", now=1000.0) is None  # type: ignore[arg-type]
    other_sid = "f" * 16 if sid != "f" * 16 else "e" * 16
    assert verify(rt, f"v2.{ident}.{other_sid}.{expires}.{sig}", now=1000.0) is None  # type: ignore[arg-type]
    forged = issue(b"not-a-key", one, 3600, now=1000.0)
    assert verify(rt, forged, now=1000.0) is None  # type: ignore[arg-type]
    for junk in ("", "v1", "v2.a.1.b", "v1.a.notanumber.b", "v1.a.1.b.c", token + "0"):
        assert verify(rt, junk, now=1000.0) is None  # type: ignore[arg-type]


def test_every_session_is_new() -> None:
    tokens = {issue(b"k-one", key_id("k-one"), 3600, now=1000.0) for _ in range(50)}
    assert len(tokens) == 50  # same key, same second: still 50 sessions (one can end alone)


@pytest.mark.parametrize(
    "token",
    [
        "v1.abcdefabcdef.\u00b2\u00b3." + "0" * 64,  # today's 500s: non-ASCII expiry,
        "v1.abcdefabcdef." + "9" * 5000 + "." + "0" * 64,  # 5,000 digits,
        "v1.abcdefabcdef.99." + "\u00e9" * 64,  # non-ASCII signature
        "v2.abcdefabcdef.0123456789abcdef." + "9" * 40 + "." + "0" * 64,
        "v2.abcdefabcdef.0123456789abcdef.\uff11\uff12." + "0" * 64,  # full-width digits
        "v2.\u00e9bcdefabcdef.0123456789abcdef.99." + "0" * 64,
        "v2.abcdefabcdef.0123456789abcdef.99." + "0" * 64 + "\n",
        "v2." + "." * 10_000,
    ],
)
def test_malformed_tokens_are_refused_without_raising(token: str) -> None:
    rt = runtime_with(ApiKeys(["k-one"]))
    assert read(rt, token, now=1000.0) == "malformed"  # type: ignore[arg-type]


def test_removing_a_key_ends_its_sessions(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("old-key\nnew-key\n")
    keys = ApiKeys([], secret, refresh_seconds=0)
    token = issue(b"old-key", key_id("old-key"), 3600)
    assert verify(runtime_with(keys), token) == key_id("old-key")  # type: ignore[arg-type]
    secret.write_text("new-key\n")
    assert verify(runtime_with(keys), token) is None  # type: ignore[arg-type]


def test_failed_sign_ins_are_throttled_per_address_then_recover() -> None:
    now = [0.0]
    throttle = Buckets(rate=2.0, burst=3, max_entries=100, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("203.0.113.9") == 0.0
        throttle.spend("203.0.113.9")
    assert throttle.wait("203.0.113.9") == 0.5
    assert throttle.wait("198.51.100.7") == 0.0  # another address is not affected
    now[0] += 0.5
    assert throttle.wait("203.0.113.9") == 0.0


def test_the_throttle_forgets_the_least_recent_address_when_full() -> None:
    throttle = Buckets(rate=1.0, burst=1, max_entries=3, clock=lambda: 0.0)
    for i in range(10):
        throttle.spend(f"10.0.0.{i}")
    assert len(throttle) == 3
    assert throttle.wait("10.0.0.9") > 0 and throttle.wait("10.0.0.0") == 0.0


def test_addresses_are_counted_by_host_or_ipv6_64() -> None:
    assert client_address("203.0.113.9") == "203.0.113.9"
    assert client_address("2001:db8:1:2::a") == client_address("2001:db8:1:2:ffff::1")
    assert client_address("2001:db8:1:2::a") != client_address("2001:db8:1:3::a")
    assert client_address(None) == "unknown" and client_address("testclient") == "testclient"


def test_revocations_last_until_expiry_and_stay_bounded() -> None:
    now = [1000.0]
    revoked = Revocations(max_entries=2, clock=lambda: now[0])
    revoked.revoke("s1", "key-a", expires=1100)
    revoked.revoke("s2", "key-a", expires=1200)
    assert revoked.revoked("s1", "key-a", issued=900) and not revoked.revoked("s3", "key-a", 900)
    revoked.revoke("s3", "key-b", expires=1300)  # full: every key-b session until now ends
    assert len(revoked) == 2
    assert revoked.revoked("s3", "key-b", issued=999) and revoked.revoked("s9", "key-b", 1000)
    assert not revoked.revoked("s9", "key-b", issued=1001)  # a later sign-in works
    assert not revoked.revoked("s9", "key-a", issued=999)  # the other key's sessions too
    now[0] = 1150.0  # s1 expired: its place is taken again
    revoked.revoke("s4", "key-a", expires=1400)
    assert len(revoked) == 2 and revoked.revoked("s4", "key-a", 1000)


def test_a_revoked_session_is_refused_with_its_reason() -> None:
    keys = ApiKeys(["k-one"])
    rt = runtime_with(keys)
    token = issue(b"k-one", key_id("k-one"), 3600, now=1000.0)
    found = read(rt, token, now=1000.0)  # type: ignore[arg-type]
    assert isinstance(found, Session) and found.expires == 4600
    revoked = Revocations(10, clock=lambda: 1000.0)
    revoked.revoke(found.session_id, found.ident, found.expires)
    assert read(rt, token, revoked, 3600, now=1001.0) == "signed out"  # type: ignore[arg-type]
    assert read(rt, token, now=5000.0) == "expired"  # type: ignore[arg-type]


def test_the_upload_slot_is_taken_once() -> None:
    slot = UploadSlot()
    assert slot.try_take() and slot.busy and not slot.try_take()
    slot.free()
    assert not slot.busy and slot.try_take()
