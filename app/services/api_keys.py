"""API keys: which keys are valid now, and a stable, non-secret id for each.

Keys come from ``API_KEYS`` (fixed for the life of the process) and from the mounted
secret file ``API_KEYS_FILE``, read by :func:`parse_keys` here and in the settings' start-up
check alike, so a file of comments alone is no key anywhere. The file is re-read when its
modification time or size changes, checked at most every ``refresh_seconds``, so a key
can be rotated without a restart: add the new key to the Secret, move the callers, remove
the old key. Kubernetes updates a mounted Secret in place (within about a minute); a
file that cannot be read keeps the last keys that could (never an empty set by accident).

Each key is known by ``key_id``: the first 12 hex digits of its SHA-256, safe to log and
to use for per-key rate limits. Comparisons run over every key in constant time per key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from app.services.watched_file import WatchedFile

log = logging.getLogger(__name__)


def key_id(key: str) -> str:
    """A short, non-secret fingerprint of a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(text: str) -> tuple[str, ...]:
    """Keys of a secret file: one key per line, surrounding whitespace stripped; blank
    lines and lines whose first non-blank character is ``#`` (comments) are ignored, so a
    key cannot begin with ``#``."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


class ApiKeys:
    """The currently valid keys (see the module docstring)."""

    def __init__(
        self,
        fixed: Sequence[str],
        file: Path | None = None,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = tuple(k.strip() for k in fixed if k.strip())
        self._file = file
        self._watched = WatchedFile(file) if file is not None else None
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._checked = float("-inf")
        self._from_file: tuple[str, ...] = ()
        self._keys: tuple[tuple[bytes, str], ...] = ()
        self._rebuild()
        self._refresh(force=True)

    @property
    def enabled(self) -> bool:
        """False when no key is configured at all (the local demo): every caller passes."""
        return bool(self._fixed) or self._file is not None

    def _rebuild(self) -> None:
        keys = dict.fromkeys((*self._fixed, *self._from_file))
        self._keys = tuple((k.encode(), key_id(k)) for k in keys)

    def _refresh(self, force: bool = False) -> None:
        now = self._clock()
        if self._watched is None or (not force and now - self._checked < self._refresh_seconds):
            return
        self._checked = now
        try:
            changed = self._watched.read_if_changed()
        except OSError as exc:
            why = {"fields": {"error": repr(exc)}}
            log.warning("API key file unreadable: keeping the keys in use", extra=why)
            return
        if changed is None:
            return
        text, stamp = changed
        keys = parse_keys(text)
        if not keys and not self._fixed:
            log.warning("API key file is empty: keeping the keys in use")
            return
        self._watched.accept(stamp)
        if keys != self._from_file:
            self._from_file = keys
            self._rebuild()
            log.info("API keys loaded", extra={"fields": {"ids": self.ids()}})

    def ids(self) -> list[str]:
        """The ids of the valid keys (never the keys)."""
        return [ident for _, ident in self._keys]

    def check(self, supplied: str | None) -> str | None:
        """The id of the matching key, or None. Every key is compared, so the time taken
        does not depend on which key (if any) matched."""
        self._refresh()
        candidate = (supplied or "").encode()
        matched: str | None = None
        for key, ident in self._keys:
            if hmac.compare_digest(candidate, key):
                matched = ident
        return matched

    def secret(self, ident: str) -> bytes | None:
        """The key whose id is ``ident`` (to sign and check dashboard sessions), or None
        once it is no longer valid, so removing a key also ends its sessions."""
        self._refresh()
        for key, known in self._keys:
            if hmac.compare_digest(ident.encode(), known.encode()):
                return key
        return None
