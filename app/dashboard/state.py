"""What the dashboard keeps between requests: the model card, the asset version and its
guards (upload slot, sign-in throttles, signed-out sessions), on ``app.state.dashboard``."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.requests import Request

from app.core.config import Settings
from app.dashboard.guards import Guards

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
CARD_FORMAT = 1


@dataclass(frozen=True)
class ModelCard:
    """``card.json`` of the model card directory, or why there is none."""

    directory: Path
    data: dict[str, Any] | None
    problem: str | None

    def plot(self, plot_id: str) -> Path | None:
        """The file of a plot the card lists (never any other path)."""
        if self.data is None:
            return None
        listed = {p.get("id") for p in self.data.get("plots", [])}
        parts = PurePosixPath(plot_id).parts
        if plot_id not in listed or ".." in parts or not plot_id.endswith(".png"):
            return None
        path = self.directory / "plots" / plot_id
        return path if path.is_file() else None

    def report(self) -> Path | None:
        name = self.data.get("report") if self.data else None
        path = self.directory / "report.html"
        return path if name == "report.html" and path.is_file() else None


def read_card(directory: Path) -> ModelCard:
    """The card in ``directory``; a missing or unreadable card is a problem, not an error."""
    path = directory / "card.json"
    if not path.is_file():
        return ModelCard(directory, None, f"no model card at {path} (dvc repro model_card)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return ModelCard(directory, None, f"model card unreadable: {exc}")
    if not isinstance(data, dict) or data.get("format_version") != CARD_FORMAT:
        return ModelCard(directory, None, f"model card format is not {CARD_FORMAT}")
    return ModelCard(directory, data, None)


class CardStore:
    """The card, read again when ``card.json`` changes (a new card next to a reload)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[int, int] | None = None
        self._card = read_card(directory)
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.directory / "card.json").stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def get(self) -> ModelCard:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._card, self._stamp = read_card(self.directory), stamp
        return self._card


def asset_version() -> str:
    """A hash of the static files, appended to their URLs so browsers never mix versions."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class DashboardState:
    card: CardStore
    assets: str
    pod: str = field(default_factory=socket.gethostname)
    guards: Guards | None = None  # sized from the settings at the first request


def dashboard_of(request: Request) -> DashboardState:
    """The dashboard's state, set by the lifespan."""
    state: DashboardState = request.app.state.dashboard
    return state


def guards_of(request: Request, settings: Settings) -> Guards:
    """The dashboard's guards, built from the runtime's settings at the first request
    that needs them (the lifespan's :func:`load_dashboard` gets the card directory only)."""
    state = dashboard_of(request)
    if state.guards is None:
        state.guards = Guards.from_settings(settings)
    return state.guards


def load_dashboard(card_dir: Path) -> DashboardState:
    state = DashboardState(CardStore(card_dir), asset_version())
    problem = state.card.get().problem
    if problem:
        log.warning("dashboard: no model card", extra={"fields": {"why": problem}})
    return state
