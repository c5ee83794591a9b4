"""The dashboard's HTML: one layout, a body per page, every value escaped.

Pages are plain HTML with a script module each; no inline script or style, so the
Content-Security-Policy can forbid both.
"""

from __future__ import annotations

from functools import cache
from html import escape
from string import Template
from typing import Any

from app import __version__
from app.dashboard.state import TEMPLATES

PAGES = (
    ("live", "Live"),
    ("score", "Score"),
    ("batch", "Batch"),
    ("rules", "Rules"),
    ("review", "Review"),
    ("model", "Model"),
)

# Scripts and styles from the dashboard only; no frames, no plugins, forms post home.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The audit report is a standalone page with inline styles and embedded images, no script.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@cache
def template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.html").read_text())


def _nav(active: str | None) -> str:
    if active is None:
        return ""
    items = []
    for page, label in PAGES:
        current = ' aria-current="page"' if page == active else ""
        items.append(f'<li><a href="/dashboard/{page}"{current}>{label}</a></li>')
    return f'<nav class="site-nav" aria-label="Dashboard pages"><ul>{"".join(items)}</ul></nav>'


def _account(who: str | None) -> str:
    if who is None:
        return ""
    if who == "anonymous":
        return (
            '<p class="account"><span class="badge warn" title="No API keys are configured">'
            "Open: no API keys</span></p>"
        )
    return (
        f'<div class="account"><span class="muted">Key <code>{escape(who)}</code></span>'
        '<button type="button" class="button link" id="sign-out">Sign out</button></div>'
    )


def layout(
    page: str,
    title: str,
    body: str,
    *,
    who: str | None,
    assets: str,
    environment: str,
    pod: str,
    nav: bool = True,
    api_reference: bool = True,
) -> str:
    """A whole page around ``body`` (already HTML); ``api_reference`` links ``/docs``."""
    return template("layout").substitute(
        title=escape(title),
        page=page,
        script=f"{page}.js",
        nav=_nav(page if nav else None),
        account=_account(who),
        body=body,
        assets=assets,
        environment=escape(environment),
        pod=escape(pod),
        app_version=escape(__version__),
        api_reference=' · <a href="/docs">API reference</a>' if api_reference else "",
    )


def options(values: tuple[str, ...], selected: str | None = None) -> str:
    """``<option>`` elements, labels in words (``online_retail`` reads "online retail")."""
    out = []
    for value in values:
        mark = " selected" if value == selected else ""
        label = value.replace("_", " ")
        out.append(f'<option value="{escape(value)}"{mark}>{escape(label)}</option>')
    return "".join(out)


def body(name: str, **values: Any) -> str:
    """A page body template with ``values`` substituted (callers escape them)."""
    return template(name).substitute(**{k: str(v) for k, v in values.items()})


def size_text(n: int) -> str:
    """Bytes in words: ``1,048,576`` reads ``1 MiB``."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
