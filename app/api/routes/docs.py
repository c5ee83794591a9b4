"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from files in the image.

FastAPI's own pages load their scripts, stylesheet and icon from a CDN (and ReDoc its
fonts from Google): in a cluster without internet access they stay blank, and anywhere
else they run third-party code on the API's origin. The files come instead from the
pinned ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2 bundles), mounted under
``/docs/static``. ``DOCS_ENABLED=false`` serves neither page; ``/openapi.json`` stays.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_URL = "/docs/static"
ASSETS = Path(str(files("fastapi_offline") / "static"))


def mount(app: FastAPI) -> None:
    """Add the two pages and their assets to ``app`` (built with ``docs_url=None`` and
    ``redoc_url=None``, so FastAPI's CDN-backed pages are not there)."""
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS), name="docs-static")
    schema = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{schema}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{schema}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
