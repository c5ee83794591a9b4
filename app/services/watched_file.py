"""A mounted file that may change under a running process (a Secret, a ConfigMap).

Kubernetes updates a mounted Secret or ConfigMap in place, within about a minute of an
edit. :class:`WatchedFile` says when the file at a path has changed since it was last
read, by its modification time and size (one ``stat``), and reads it then; the API keys
(:mod:`app.services.api_keys`) and the rule set (:mod:`app.services.rulebook`) are both
reloaded this way, and both keep what they have when the new text is unreadable or
refused.
"""

from __future__ import annotations

from pathlib import Path


class WatchedFile:
    """The file at ``path`` and the stamp of the text last accepted from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None

    def read_if_changed(self) -> tuple[str, tuple[int, int]] | None:
        """The file's text and stamp when it differs from the accepted one, else None.
        Raises OSError when the file cannot be read (the caller keeps what it has)."""
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return None
        return self.path.read_text(), stamp

    def accept(self, stamp: tuple[int, int]) -> None:
        """The text of ``stamp`` was taken (or refused for good): do not read it again."""
        self._stamp = stamp
