"""The dashboard's guards, each bounded in memory: the pod's one upload slot, token
buckets by client address or key id (sign-in throttles), and the signed-out sessions."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.core.config import Settings


class UploadSlot:
    """One file scored per pod at a time. Taken without waiting (a second upload is
    refused at once, before its body is read) and freed by whoever took it."""

    def __init__(self) -> None:
        self._taken = False

    @property
    def busy(self) -> bool:
        return self._taken

    def try_take(self) -> bool:
        """Take the slot if it is free (the event loop is one thread: no race)."""
        if self._taken:
            return False
        self._taken = True
        return True

    def free(self) -> None:
        self._taken = False


def client_address(host: str | None) -> str:
    """The address a throttle counts by: IPv6 callers by their /64 (one host usually
    holds a whole /64, so single addresses would cost an attacker nothing)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Buckets:
    """Token buckets by name (client address, key id): ``burst`` in a row, then ``rate``
    a second. At most ``max_entries`` names are kept; beyond that the least recently
    seen is forgotten (a full bucket, which is what a new name gets anyway)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_entries = rate, float(burst), max_entries
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, name: str) -> float:
        now = self._clock()
        tokens, updated = self._buckets.get(name, (self.burst, now))
        return min(self.burst, tokens + (now - updated) * self.rate)

    def wait(self, name: str) -> float:
        """Seconds until ``name`` may act (0: now); nothing is spent."""
        tokens = self._tokens(name)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def spend(self, name: str) -> None:
        tokens = max(0.0, self._tokens(name) - 1.0)
        self._buckets[name] = (tokens, self._clock())
        self._buckets.move_to_end(name)
        while len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)

    def take(self, name: str) -> float:
        """Spend one token if there is one (0.0), else the seconds to wait."""
        wait = self.wait(name)
        if wait == 0.0:
            self.spend(name)
        return wait


class Revocations:
    """Signed-out sessions of this pod, each kept until it would have expired.

    At most ``max_entries`` sessions are listed. When the list is full (and nothing in it
    has expired), signing out ends every session of that key issued up to then instead:
    coarser, never weaker, and bounded by the number of keys."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._sessions: dict[str, float] = {}  # session id -> expiry (epoch seconds)
        self._keys: dict[str, float] = {}  # key id -> its sessions issued until then are void

    def __len__(self) -> int:
        return len(self._sessions)

    def revoke(self, session_id: str, ident: str, expires: float) -> None:
        now = self._clock()
        if len(self._sessions) >= self.max_entries:
            self._sessions = {s: e for s, e in self._sessions.items() if e > now}
        if len(self._sessions) < self.max_entries:
            self._sessions[session_id] = expires
        else:
            self._keys[ident] = now

    def revoked(self, session_id: str, ident: str, issued: float) -> bool:
        # ``issued`` has whole seconds: a sign-in in the same second as a key-wide
        # sign-out is ended too (safe side; that operator signs in again).
        void_until = self._keys.get(ident)
        return session_id in self._sessions or (void_until is not None and issued <= void_until)


@dataclass
class Guards:
    """The dashboard's guards, sized from the settings."""

    uploads: UploadSlot
    failures: Buckets  # failed sign-ins, by client address
    sign_ins: Buckets  # sign-ins, by key id
    revocations: Revocations
    session_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Guards:
        per_key = settings.dashboard_sign_ins_per_key_per_minute
        return cls(
            uploads=UploadSlot(),
            failures=Buckets(
                settings.dashboard_sign_in_failures_per_second,
                settings.dashboard_sign_in_failures_burst,
                settings.dashboard_sign_in_addresses_max,
            ),
            # bounded by the keys that exist: only a valid key reaches this bucket
            sign_ins=Buckets(per_key / 60, per_key, max_entries=100_000),
            revocations=Revocations(settings.dashboard_revoked_sessions_max),
            session_seconds=settings.dashboard_session_hours * 3600,
        )
