"""Dashboard sign-in: the API keys, carried by a signed cookie instead of a header.

A browser cannot add ``X-API-Key`` to a page load, so signing in with a key sets an
``HttpOnly`` cookie holding ``v2.<key id>.<session id>.<expiry>.<signature>``: a random
session id, and an HMAC of the rest under the key itself. Any pod can check it, and a key
removed from the key file ends its sessions at the next refresh. Signing out lists the
session id as revoked on the pod that answered, until the session would have expired
(:class:`~app.dashboard.guards.Revocations`). The cookie is ``SameSite=Strict`` and
``Secure`` outside the local environment; requests that change something must also come
from the dashboard's own origin (``Origin`` header), so another site cannot submit them
with the operator's cookie.

A cookie that is not a valid session (malformed, expired, forged, signed out) counts as
no session, with one warning line saying why; it is never echoed to the log.

With no API keys configured (the local demo) the dashboard is open, like ``/v1``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status

from app.api.deps import Runtime, RuntimeDep, spend_rate
from app.dashboard.guards import Revocations
from app.dashboard.state import guards_of

log = logging.getLogger(__name__)

COOKIE = "fraud_dashboard_session"
COOKIE_PATH = "/dashboard"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Key id (12 hex), session id (16 hex), expiry (at most 12 digits), SHA-256 HMAC (64 hex).
_TOKEN = re.compile(r"v2\.([0-9a-f]{12})\.([0-9a-f]{16})\.([0-9]{1,12})\.([0-9a-f]{64})")


@dataclass(frozen=True)
class Session:
    ident: str  # the key id
    session_id: str
    expires: int  # epoch seconds


def _signature(secret: bytes, ident: str, session_id: str, expires: int) -> str:
    message = f"dashboard-session|v2|{ident}|{session_id}|{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def issue(secret: bytes, ident: str, lifetime_s: float, now: float | None = None) -> str:
    """A new session token for the key ``ident`` (whose value is ``secret``)."""
    expires = int((time.time() if now is None else now) + lifetime_s)
    session_id = secrets.token_hex(8)
    return f"v2.{ident}.{session_id}.{expires}.{_signature(secret, ident, session_id, expires)}"


def read(
    runtime: Runtime,
    token: str,
    revocations: Revocations | None = None,
    lifetime_s: float = 0.0,
    now: float | None = None,
) -> Session | str:
    """The session ``token`` carries, or why it is refused (a short reason). Only ASCII
    fields of fixed shape are parsed, so no input can raise."""
    found = _TOKEN.fullmatch(token) if len(token) <= 128 else None
    if found is None:
        return "malformed"
    ident, session_id, expires_text, signature = found.groups()
    expires = int(expires_text)
    if expires < (time.time() if now is None else now):
        return "expired"
    secret = runtime.keys.secret(ident)
    if secret is None:
        return "unknown key"
    if not hmac.compare_digest(signature, _signature(secret, ident, session_id, expires)):
        return "bad signature"
    if revocations is not None and revocations.revoked(session_id, ident, expires - lifetime_s):
        return "signed out"
    return Session(ident, session_id, expires)


def verify(runtime: Runtime, token: str | None, now: float | None = None) -> str | None:
    """The key id of a valid, unexpired token whose key is still valid; else None
    (revocations aside: :func:`signed_in` checks those)."""
    found = read(runtime, token, now=now) if token else None
    return found.ident if isinstance(found, Session) else None


def current(request: Request, runtime: Runtime) -> Session | str | None:
    """The request's session cookie: a session, why it is refused, or None (no cookie)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    guards = guards_of(request, runtime.settings)
    return read(runtime, token, guards.revocations, guards.session_seconds)


def set_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(runtime.settings.dashboard_session_hours * 3600),
        path=COOKIE_PATH,
        secure=runtime.settings.environment != "local",
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, runtime: Runtime) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=runtime.settings.environment != "local",
        httponly=True,
        samesite="strict",
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # browsers send Origin on every cross-site POST
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def signed_in(request: Request, runtime: Runtime) -> str | None:
    """Who is calling: a key id, ``anonymous`` when there are no keys, or None. A
    refused cookie is logged (one line) and marked for clearing."""
    if not runtime.keys.enabled:
        return "anonymous"
    header = request.headers.get("x-api-key")
    if header is not None:
        return runtime.keys.check(header)
    found = current(request, runtime)
    if isinstance(found, str):
        request.state.session_refused = found
        why = {"reason": found, "path": request.url.path}
        log.warning("dashboard session cookie refused", extra={"fields": why})
        return None
    return found.ident if found is not None else None


def refused_cookie(request: Request, runtime: Runtime) -> dict[str, str]:
    """Headers that make the browser drop a refused cookie (none if it sent none)."""
    if getattr(request.state, "session_refused", None) is None:
        return {}
    response = Response()
    clear_cookie(response, runtime)
    return {"set-cookie": response.headers["set-cookie"]}


async def require_session(request: Request, runtime: RuntimeDep) -> str:
    """401 unless signed in (cookie or ``X-API-Key``); 403 for a cross-origin change;
    429 over the key's rate limit (the same limiter as the API)."""
    ident = signed_in(request, runtime)
    if ident is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in with an API key",
            headers=refused_cookie(request, runtime),
        )
    if request.method in _UNSAFE and not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
    request.state.api_key = ident
    spend_rate(runtime, ident)
    return ident


SessionDep = Annotated[str, Depends(require_session)]
