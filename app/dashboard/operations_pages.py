"""The fraud-operations pages: Rules (the set in force and a dry-run form), Review (the
queue; drawn by ``review.js``) and the Model page's Shadow section.

The rule set and the shadow comparison are rendered on the server from the same data
the JSON routes serve (:mod:`app.dashboard.operations_api`); every value is escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from fastapi import HTTPException

from app.api.deps import Runtime
from app.dashboard.model_page import _badge, _code, _facts, _fmt, _table
from app.dashboard.operations_api import rule_set, shadow_view
from app.dashboard.pages import body
from app.schemas.operations import RuleOut

PAGES = ("rules", "review")
DRY_RUN_DAYS = 7
_LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> takes


def _action(rule: RuleOut) -> str:
    parts = [escape(p) for p in (rule.decision, rule.risk_level) if p]
    parts.append(f"<code>{escape(rule.reason)}</code>")
    return " · ".join(parts)


def _rules_table(rules: list[RuleOut]) -> str:
    rows = [
        [
            f"<code>{escape(r.id)}</code>"
            + (f'<br><span class="hint">{escape(r.description)}</span>' if r.description else ""),
            escape(r.stage),
            ", ".join(f"<code>{escape(f)}</code>" for f in r.fields) or "–",
            _action(r),
            _badge(r.enabled, "enabled", "disabled"),
        ]
        for r in rules
    ]
    head = ["Rule", "Stage", "Reads", "Action", "Enabled"]
    return _table("Rules in file order", head, rows, numeric_from=len(head))


def _window(now: datetime) -> tuple[str, str]:
    """The dry-run's default period: the last seven days up to the next whole minute."""
    until = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    since = until - timedelta(days=DRY_RUN_DAYS)
    return since.strftime(_LOCAL_MINUTE), until.strftime(_LOCAL_MINUTE)


async def render_rules(runtime: Runtime, now: datetime | None = None) -> str:
    """The Rules page body."""
    state = await rule_set(runtime)
    active = runtime.rulebook.active
    loaded = state.loaded_at.strftime("%Y-%m-%d %H:%M:%S UTC") if state.loaded_at else "–"
    facts = _facts(
        [
            ("Version", _code(state.version)),
            ("In answers as", _code(state.label)),
            ("Loaded", escape(loaded)),
            ("File", _code(state.source)),
            ("Rules", f"{len(state.rules):,} ({sum(r.enabled for r in state.rules):,} enabled)"),
        ]
    )
    problem = (
        '<div class="alert error" role="alert"><p>The last rule file was refused; the set '
        f'above stays in force:</p><pre class="problem">{escape(state.problem)}</pre></div>'
        if state.problem
        else ""
    )
    lists = _table(
        "Rule lists",
        ["List", "Values"],
        [[f"<code>{escape(n)}</code>", f"{c:,}"] for n, c in state.lists.items()],
    )
    since, until = _window(now or datetime.now(UTC))
    return body(
        "rules",
        facts=facts,
        problem=problem,
        rules_table=_rules_table(state.rules) if state.rules else "<p>No rule set is loaded.</p>",
        lists_table=lists if state.lists else "<p>The rule set declares no lists.</p>",
        source_text=escape(active.source_text if active else ""),
        since=since,
        until=until,
        max_rows=f"{runtime.settings.rules_dry_run_max_rows:,}",
    )


def render_review(who: str) -> str:
    """The Review page body (the queue is drawn by ``review.js``)."""
    return body("review", analyst=escape(who))


def _pct(value: Any) -> str:
    return _fmt(value, "pct")


def _shadow_body(view: dict[str, Any]) -> str:
    challenger = view["challenger"]
    facts = _facts(
        [
            ("Challenger", _badge(bool(challenger.get("loaded")), "scoring", "not scoring")),
            ("Version", _code(challenger.get("version"))),
            ("Loaded from", _code(challenger.get("uri"))),
        ]
    )
    parts = [facts]
    if challenger.get("problem"):
        parts.append(f'<p class="alert warn">{escape(str(challenger["problem"]))}</p>')
    live = view.get("live") or {}
    if live:
        compared = live.get("agreed", 0) + live.get("disagreed", 0)
        agreement = live["agreed"] / compared if compared else None
        dropped = live.get("dropped") or {}
        rows = [
            ["Rows submitted", _fmt(live.get("submitted"), "int")],
            ["Rows scored", _fmt(live.get("scored"), "int")],
            ["Decisions agreed", _fmt(live.get("agreed"), "int")],
            ["Decisions differed", _fmt(live.get("disagreed"), "int")],
            ["Agreement", _pct(agreement)],
            ["Queued now", _fmt(live.get("queued_rows"), "int")],
        ]
        rows += [[f"Dropped ({escape(k)})", _fmt(v, "int")] for k, v in sorted(dropped.items())]
        parts.append(_table("This pod since start", ["Counter", "Rows"], rows))
    recorded = view.get("recorded") or []
    head = [
        "Challenger version",
        "Rows",
        "Agreement",
        "Alert rate (champion / challenger)",
        "Labelled",
        "Precision (champion / challenger)",
        "Recall (champion / challenger)",
    ]
    rows = [
        [
            _code(r.get("challenger_version")),
            _fmt(r.get("rows"), "int"),
            _pct(r.get("agreement")),
            f"{_pct(r.get('champion_alert_rate'))} / {_pct(r.get('challenger_alert_rate'))}",
            _fmt(r.get("labelled"), "int"),
            f"{_pct(r.get('champion_precision'))} / {_pct(r.get('challenger_precision'))}",
            f"{_pct(r.get('champion_recall'))} / {_pct(r.get('challenger_recall'))}",
        ]
        for r in recorded
    ]
    if rows:
        parts.append(_table("On record, last 24 hours", head, rows))
    else:
        parts.append("<p>No shadow scores on record in the last 24 hours.</p>")
    return "".join(parts)


async def render_shadow(runtime: Runtime) -> str:
    """The Model page's Shadow section: the challenger beside the champion."""
    try:
        inner = _shadow_body(await shadow_view(runtime))
    except HTTPException as exc:  # the system of record is down: say so, keep the page
        inner = f'<p class="alert warn">{escape(str(exc.detail))}</p>'
    return (
        '<section class="panel" aria-labelledby="h-shadow"><h2 id="h-shadow">Shadow</h2>'
        '<p class="panel-note">The challenger scores the same traffic in the background; its '
        "decisions are recorded, never returned. Agreement is the share of equal decisions; "
        "alerts are decisions other than approve; precision and recall are on the rows whose "
        f"label has arrived.</p>{inner}</section>"
    )
