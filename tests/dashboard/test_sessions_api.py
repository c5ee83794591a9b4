"""Dashboard sessions through the real app: malformed cookies are a 401 (or the sign-in
redirect) with one log line, failed sign-ins are throttled per client address and
sign-ins per key, and signing out ends the session on the server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.dashboard.session import COOKIE
from app.services.api_keys import key_id

pytestmark = pytest.mark.integration

KEY = "key-one"
IDENT = key_id(KEY)
SIG = "0" * 64
SID = "0123456789abcdef"
E_ACUTE = "\u00e9"
MALFORMED = {
    "non-ASCII expiry": f"v1.{IDENT}.\u00b2\u00b3.{SIG}",
    "5,000-digit expiry": f"v1.{IDENT}.{'9' * 5000}.{SIG}",
    "non-ASCII signature": f"v1.{IDENT}.9999999999.{E_ACUTE * 64}",
    "bad signature": f"v2.{IDENT}.{SID}.9999999999.{SIG}",
    "short signature": f"v2.{IDENT}.{SID}.9999999999.abc",
    "wrong field count": f"v2.{IDENT}.9999999999.{SIG}",
    "non-ASCII key id": f"v2.\u00e9\u00e9\u00e9.{SID}.9999999999.{SIG}",
    "absurd expiry": f"v2.{IDENT}.{SID}.{10**40}.{SIG}",
    "non-ASCII session id": f"v2.{IDENT}.{E_ACUTE * 16}.9999999999.{SIG}",
}


@pytest.fixture
def keyed(client_for: Any, carded: tuple[Path, Path]) -> Any:
    bundle, card = carded

    def start(**overrides: Any) -> TestClient:
        client: TestClient = client_for(
            bundle_uri=str(bundle), model_card_dir=card, api_keys="key-one,key-two", **overrides
        )
        return client

    return start


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def attach(self) -> None:
        logging.getLogger().addHandler(self)


@pytest.fixture
def logged() -> Iterator[Records]:
    """Every record of WARNING or above, from :meth:`Records.attach` on (call it once the
    app has set up its logging, which replaces the root logger's handlers)."""
    handler = Records()
    handler.setLevel(logging.WARNING)
    yield handler
    logging.getLogger().removeHandler(handler)


def _as(client: TestClient, address: str) -> TestClient:
    """Another caller of the same app, from ``address``."""
    return TestClient(client.app, client=(address, 40000), raise_server_exceptions=False)


@pytest.mark.parametrize("why", sorted(MALFORMED))
def test_a_malformed_cookie_is_a_401_with_one_log_line(
    keyed: Any, logged: Records, why: str
) -> None:
    client = keyed()
    # raw bytes: the server reads headers as Latin-1, so "\u00b2" arrives as itself
    cookie = {"Cookie": f"{COOKIE}={MALFORMED[why]}".encode("latin-1")}
    logged.attach()
    api = client.get("/dashboard/api/live", headers=cookie)
    assert api.status_code == 401 and api.json()["detail"] == "sign in with an API key"
    assert len(logged.records) == 1, [r.getMessage() for r in logged.records]
    (record,) = logged.records
    assert record.exc_info is None and len(record.getMessage()) < 200
    assert "Max-Age=0" in api.headers["set-cookie"]  # the browser drops the bad cookie
    # pages keep their contract for "no session": the sign-in page
    page = client.get("/dashboard/model", headers=cookie, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/dashboard/login")
    assert client.get("/dashboard/login", headers=cookie).status_code == 200
    assert client.get("/dashboard/card/report", headers=cookie).status_code == 401
    assert client.delete("/dashboard/api/session", headers=cookie).status_code == 204


def test_no_cookie_logs_nothing(keyed: Any, logged: Records) -> None:
    client = keyed()
    logged.attach()
    assert client.get("/dashboard/api/live").status_code == 401
    assert logged.records == []


def test_a_flood_of_wrong_sign_ins_cannot_lock_out_another_address(keyed: Any) -> None:
    # A refill slow enough that none comes during the test however slow the machine is
    # (at the default 2 a second, a busy CI machine let one more guess through).
    client = keyed(dashboard_sign_in_failures_per_second=0.001)
    attacker, operator = _as(client, "203.0.113.9"), _as(client, "198.51.100.7")
    codes = [
        attacker.post("/dashboard/api/session", json={"key": f"guess-{i}"}).status_code
        for i in range(40)
    ]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    # the throttled address stays throttled, a right key included (no guessing past it)
    assert attacker.post("/dashboard/api/session", json={"key": KEY}).status_code == 429
    # another address is untouched: its wrong key is a 401, its right key signs in
    assert operator.post("/dashboard/api/session", json={"key": "typo"}).status_code == 401
    assert operator.post("/dashboard/api/session", json={"key": KEY}).status_code == 204


def test_ipv6_callers_are_throttled_by_their_64_bit_prefix(keyed: Any) -> None:
    client = keyed(dashboard_sign_in_failures_burst=2, dashboard_sign_in_failures_per_second=0.001)
    for host in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
        wrong = _as(client, host).post("/dashboard/api/session", json={"key": "x"})
        assert wrong.status_code == 401
    again = _as(client, "2001:db8:1:2:ffff::1").post("/dashboard/api/session", json={"key": "x"})
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    other = _as(client, "2001:db8:1:3::a").post("/dashboard/api/session", json={"key": "x"})
    assert other.status_code == 401


def test_sign_ins_are_limited_per_key(keyed: Any) -> None:
    client = keyed(dashboard_sign_ins_per_key_per_minute=3)
    one = [client.post("/dashboard/api/session", json={"key": KEY}).status_code for _ in range(4)]
    assert one == [204, 204, 204, 429]
    # the other key, from the same address, is not affected
    assert client.post("/dashboard/api/session", json={"key": "key-two"}).status_code == 204


def test_signing_out_ends_the_session_on_the_server(keyed: Any) -> None:
    client = keyed()
    signed = client.post("/dashboard/api/session", json={"key": KEY})
    assert signed.status_code == 204
    copied = client.cookies.get(COOKIE, path="/dashboard")
    assert copied and client.get("/dashboard/api/live").status_code == 200
    elsewhere = _as(client, "198.51.100.7")  # the same key signed in on another browser
    assert elsewhere.post("/dashboard/api/session", json={"key": KEY}).status_code == 204
    out = client.delete("/dashboard/api/session")
    assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
    thief = _as(client, "192.0.2.50")
    thief.cookies.set(COOKIE, copied, path="/dashboard")
    assert thief.get("/dashboard/api/live").status_code == 401
    page = thief.get("/dashboard/live", follow_redirects=False)
    assert page.status_code == 303  # the copied cookie no longer opens a page
    assert elsewhere.get("/dashboard/api/live").status_code == 200  # only that session ended


def test_revoked_sessions_are_bounded(keyed: Any) -> None:
    client = keyed(dashboard_revoked_sessions_max=3)
    tokens = []
    for _ in range(5):
        client.cookies.clear()
        assert client.post("/dashboard/api/session", json={"key": KEY}).status_code == 204
        token = client.cookies.get(COOKIE)
        assert token
        tokens.append(token)
        assert client.delete("/dashboard/api/session").status_code == 204
    assert len(client.app.state.dashboard.guards.revocations) <= 3  # type: ignore[attr-defined]
    for token in tokens:  # every signed-out session stays ended, even past the bound
        client.cookies.clear()
        client.cookies.set(COOKIE, token, path="/dashboard")
        assert client.get("/dashboard/api/live").status_code == 401
