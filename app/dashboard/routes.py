"""The dashboard's pages, static assets and model-card files, under ``/dashboard``.

Pages need a session (or no API keys at all, locally); without one they redirect to the
sign-in page. Static assets are the same for everyone and hold nothing secret. Every
response carries a strict Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.api.deps import Runtime, RuntimeDep
from app.dashboard import api, model_page, operations_api, operations_pages
from app.dashboard.pages import (
    CSP,
    REPORT_CSP,
    SECURITY_HEADERS,
    body,
    layout,
    options,
    size_text,
)
from app.dashboard.session import refused_cookie, signed_in
from app.dashboard.state import STATIC, dashboard_of
from app.dashboard.upload import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from feature_repo.request_features import REQUEST_DEFAULTS
from feature_repo.vocabulary import CHANNELS, ENTRY_MODES, MERCHANT_CATEGORIES

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PAGE_HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": CSP, "Cache-Control": "no-store"}
TITLES = {
    "live": "Live",
    "score": "Score",
    "batch": "Batch",
    "rules": "Rules",
    "review": "Review",
    "model": "Model",
}


class DashboardStatic(StaticFiles):
    """The bundled assets, with the dashboard's security headers; cached for a day (the
    pages link them with a content hash, so a new version is a new URL)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({**SECURITY_HEADERS, "Content-Security-Policy": CSP})
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def _page(request: Request, runtime: Runtime, page: str, html: str, who: str | None) -> Response:
    state = dashboard_of(request)
    document = layout(
        page,
        TITLES.get(page, "Sign in"),
        html,
        who=who,
        assets=state.assets,
        environment=runtime.settings.environment,
        pod=state.pod,
        nav=page in TITLES,
        api_reference=runtime.settings.docs_enabled,
    )
    return HTMLResponse(document, headers=PAGE_HEADERS)


def _sign_in_redirect(request: Request, runtime: Runtime) -> Response:
    target = quote(request.url.path, safe="/")
    headers = {**PAGE_HEADERS, **refused_cookie(request, runtime)}
    return RedirectResponse(
        f"/dashboard/login?next={target}", status.HTTP_303_SEE_OTHER, headers=headers
    )


def _safe_next(value: str | None) -> str:
    """Only dashboard pages: never an open redirect to another site."""
    if value and value.startswith("/dashboard/") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard/live"


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/dashboard/live", status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/login")
async def login(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    target = _safe_next(next)
    if signed_in(request, runtime) is not None:
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)
    hours = f"{runtime.settings.dashboard_session_hours:g}"
    return _page(request, runtime, "login", body("login", next=target, hours=hours), None)


def _body(page: str, request: Request, runtime: Runtime) -> str:
    if page == "live":
        served = api.served_model(runtime)
        return body(
            "live",
            model_version=served["version"],
            alias=served["alias"] or "none (a bundle directory)",
            decision_source=served["decision_source"].replace("_", " "),
            feature_service=served["feature_service"],
        )
    if page == "score":
        return body(
            "score",
            merchant_options=options(MERCHANT_CATEGORIES, REQUEST_DEFAULTS["merchant_category"]),
            channel_options=options(CHANNELS, REQUEST_DEFAULTS["channel"]),
            entry_options=options(ENTRY_MODES, REQUEST_DEFAULTS["entry_mode"]),
        )
    if page == "batch":
        limit = runtime.settings.max_body_bytes
        return body(
            "batch",
            max_bytes=limit,
            max_bytes_text=size_text(limit),
            max_rows=f"{runtime.settings.dashboard_upload_max_rows:,}",
            assets=dashboard_of(request).assets,
            required_columns=_code_list(REQUIRED_COLUMNS),
            optional_columns=_code_list(OPTIONAL_COLUMNS),
        )
    return model_page.render(api.served_model(runtime), dashboard_of(request).card.get())


def _code_list(names: tuple[str, ...]) -> str:
    return ", ".join(f"<code>{name}</code>" for name in names)


@router.get("/{page}")
async def page(page: str, request: Request, runtime: RuntimeDep) -> Response:
    if page not in TITLES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dashboard page")
    who = signed_in(request, runtime)
    if who is None:
        return _sign_in_redirect(request, runtime)
    if page == "rules":
        html = await operations_pages.render_rules(runtime)
    elif page == "review":
        html = operations_pages.render_review(who)
    else:
        html = _body(page, request, runtime)
    if page == "model":
        html += await operations_pages.render_shadow(runtime)
    return _page(request, runtime, page, html, who)


def _card_file(request: Request, runtime: Runtime, path: Path | None, **kw: Any) -> Response:
    if signed_in(request, runtime) is None:
        headers = refused_cookie(request, runtime)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in with an API key", headers)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not in the model card")
    return FileResponse(path, **kw)


@router.get("/card/plots/{plot_id:path}")
async def card_plot(plot_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """A plot the model card lists (PNG)."""
    path = dashboard_of(request).card.get().plot(plot_id)
    headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"}
    return _card_file(request, runtime, path, media_type="image/png", headers=headers)


@router.get("/card/report")
async def card_report(request: Request, runtime: RuntimeDep) -> Response:
    """The audit's standalone HTML report (no script may run in it)."""
    path = dashboard_of(request).card.get().report()
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": REPORT_CSP}
    return _card_file(request, runtime, path, media_type="text/html", headers=headers)


def mount(app: FastAPI) -> None:
    """Add the dashboard to ``app`` (the JSON routes, the pages, the assets)."""
    app.mount("/dashboard/static", DashboardStatic(directory=STATIC), name="dashboard-static")
    app.include_router(api.router)
    app.include_router(operations_api.router)
    app.include_router(router)
