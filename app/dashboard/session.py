"""Dashboard sign-in: the API keys, carried by a signed cookie instead of a header.

A browser cannot add ``X-API-Key`` to a page load, so signing in with a key sets an
``HttpOnly`` cookie holding ``v1.<key id>.<expiry>.<signature>``: the signature is an
HMAC of the id and expiry under the key itself. Nothing is stored on the server, any pod
can check it, and a key removed from the key file ends its sessions at the next refresh.
The cookie is ``SameSite=Strict`` and ``Secure`` outside the local environment; requests
that change something must also come from the dashboard's own origin (``Origin`` header),
so another site cannot submit them with the operator's cookie.

With no API keys configured (the local demo) the dashboard is open, like ``/v1``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status

from app.api.deps import Runtime, RuntimeDep, spend_rate

COOKIE = "fraud_dashboard_session"
COOKIE_PATH = "/dashboard"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _signature(secret: bytes, ident: str, expires: int) -> str:
    message = f"dashboard-session|{ident}|{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def issue(secret: bytes, ident: str, lifetime_s: float, now: float | None = None) -> str:
    """A session token for the key ``ident`` (whose value is ``secret``)."""
    expires = int((time.time() if now is None else now) + lifetime_s)
    return f"v1.{ident}.{expires}.{_signature(secret, ident, expires)}"


def verify(runtime: Runtime, token: str | None, now: float | None = None) -> str | None:
    """The key id of a valid, unexpired token whose key is still valid; else None."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1" or not parts[2].isdigit():
        return None
    _, ident, expires, signature = parts
    if int(expires) < (time.time() if now is None else now):
        return None
    secret = runtime.keys.secret(ident)
    if secret is None:
        return None
    expected = _signature(secret, ident, int(expires))
    return ident if hmac.compare_digest(signature, expected) else None


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
    """Who is calling: a key id, ``anonymous`` when there are no keys, or None."""
    if not runtime.keys.enabled:
        return "anonymous"
    header = request.headers.get("x-api-key")
    if header is not None:
        return runtime.keys.check(header)
    return verify(runtime, request.cookies.get(COOKIE))


async def require_session(request: Request, runtime: RuntimeDep) -> str:
    """401 unless signed in (cookie or ``X-API-Key``); 403 for a cross-origin change;
    429 over the key's rate limit (the same limiter as the API)."""
    ident = signed_in(request, runtime)
    if ident is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in with an API key")
    if request.method in _UNSAFE and not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
    request.state.api_key = ident
    spend_rate(runtime, ident)
    return ident


SessionDep = Annotated[str, Depends(require_session)]
