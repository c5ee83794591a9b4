"""The analysts' rule set in force, reloaded without a restart (docs/fraud-operations.md).

The rule set is a file (``RULES_FILE``: the shipped default, or on GKE the mounted
``fraud-rules`` ConfigMap). Like the API keys (:mod:`app.services.watched_file`), it is
re-read when its modification time or size changes, checked every
``RULES_REFRESH_SECONDS`` on a background thread: a file that parses and validates
against this service's fields replaces the set between two requests; one that does not
is refused, ``problem`` says why (``GET /v1/rules``, the log, and
``fraud_rules_reloads_total{outcome="refused"}``) and the set in force stays. A pod that
starts on a bad file has no set to keep: it is not ready (``/readyz``) until the file is
fixed, rather than score without its block lists.

List values (blocked terminals, allow-listed customers) also come from the system of
record's ``rule_list_entries`` table, editable without a deploy (``/v1/rules/lists``):
:meth:`Rulebook.apply_lists` merges them into the file's declared lists, and the answers'
``rule_set_version`` names both (``<file version>+lists.<change id>``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.services.watched_file import WatchedFile
from feature_repo.vocabulary import CHANNELS, ENTRY_MODES, MERCHANT_CATEGORIES
from fraud_rules.catalogue import FieldCatalogue
from fraud_rules.engine import CompiledRuleSet
from fraud_rules.load import RuleSetError, parse_rule_set

log = logging.getLogger(__name__)

# What the request schema lets these fields be: a rule testing another value is a typo.
REQUEST_VALUES = {
    "request.channel": CHANNELS,
    "request.entry_mode": ENTRY_MODES,
    "request.merchant_category": MERCHANT_CATEGORIES,
}


@dataclass(frozen=True)
class RuleState:
    """What ``/v1/rules`` and ``/readyz`` report."""

    active: CompiledRuleSet | None
    problem: str | None  # the last refused file, or why there is no set
    loaded_at: float | None
    source: str


class Rulebook:
    """The compiled rule set in force (see the module docstring); safe across threads:
    readers take :attr:`active` once per scoring call, writers swap it whole."""

    def __init__(
        self,
        path: Path,
        feature_names: Sequence[str] | None,
        on_outcome: Callable[[str], object] | None = None,
    ) -> None:
        self.path = path
        self.catalogue = FieldCatalogue.for_features(feature_names, REQUEST_VALUES)
        self._watched = WatchedFile(path)
        self._lock = threading.Lock()
        self._file_set: CompiledRuleSet | None = None
        self._lists: tuple[str, Mapping[str, Sequence[str]]] | None = None
        self.active: CompiledRuleSet | None = None
        self.problem: str | None = None
        self.loaded_at: float | None = None
        self._on_outcome = on_outcome  # fraud_rules_reloads_total{outcome}
        self.refresh()

    def state(self) -> RuleState:
        return RuleState(self.active, self.problem, self.loaded_at, str(self.path))

    def parse(self, text: str) -> CompiledRuleSet:
        """A rule set from text, validated against this service's fields, with the
        record's list values merged as they are now (a dry-run's candidate)."""
        compiled = parse_rule_set(text, self.catalogue)
        return self._with_lists(compiled)

    def _with_lists(self, compiled: CompiledRuleSet) -> CompiledRuleSet:
        if self._lists is None:
            return compiled
        version, entries = self._lists
        return compiled.with_lists(entries, version)

    def refresh(self) -> None:
        """Re-read the file if it changed (the watch thread calls this)."""
        with self._lock:
            try:
                changed = self._watched.read_if_changed()
            except OSError as exc:
                self._refuse(f"cannot read {self.path}: {exc}", None)
                return
            if changed is None:
                return
            text, stamp = changed
            try:
                compiled = parse_rule_set(text, self.catalogue)
            except RuleSetError as exc:
                self._refuse(str(exc), stamp)
                return
            self._watched.accept(stamp)
            self._file_set = compiled
            self._swap()
            self.problem = None
            if self._on_outcome is not None:
                self._on_outcome("loaded")
            label = self.active.label if self.active is not None else None
            log.info(
                "rule set loaded", extra={"fields": {"version": label, "path": str(self.path)}}
            )

    def _refuse(self, why: str, stamp: tuple[int, int] | None) -> None:
        if stamp is not None:
            self._watched.accept(stamp)  # the same bad text is not re-parsed every check
        self.problem = why
        if self._on_outcome is not None:
            self._on_outcome("refused")
        kept = self.active.label if self.active is not None else None
        log.error("rule set refused", extra={"fields": {"why": why, "kept": kept}})

    def apply_lists(self, version: str, entries: Mapping[str, Sequence[str]]) -> bool:
        """Merge the record's list values (``version``: its last change id); True when
        the set in force changed."""
        with self._lock:
            if self._lists is not None and _not_newer(version, self._lists[0]):
                return False  # two readers (the shipper, a list change) may race
            self._lists = (version, {name: tuple(values) for name, values in entries.items()})
            self._swap()
        log.info("rule lists applied", extra={"fields": {"version": version}})
        return True

    def _swap(self) -> None:
        if self._file_set is None:
            return
        self.active = self._with_lists(self._file_set)
        self.loaded_at = time.time()


def _not_newer(version: str, current: str) -> bool:
    """Whether list ``version`` (the record's last change id) adds nothing to ``current``."""
    if version.isdigit() and current.isdigit():
        return int(version) <= int(current)
    return version == current
