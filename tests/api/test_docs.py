"""/docs and /redoc are served from the image: no asset from another host (the clusters
may have no internet), every asset they name answers, and DOCS_ENABLED turns both off."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def client(**settings: object) -> TestClient:
    """The app without its lifespan: the documentation pages need no model or store."""
    return TestClient(create_app(Settings(**settings)), raise_server_exceptions=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_name_no_other_host_and_their_assets_answer(page: str) -> None:
    app = client()
    html = app.get(page)
    assert html.status_code == 200
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.text), html.text
    assets = ASSET.findall(html.text)
    assert len(assets) >= 2  # a script and a stylesheet or icon, all local
    for url in assets:
        assert url.startswith("/"), url
        answer = app.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 1_000 or url.endswith(".png"), url
    assert "'/openapi.json'" in html.text or '"/openapi.json"' in html.text


def test_the_docs_can_be_turned_off_and_the_schema_stays() -> None:
    app = client(docs_enabled=False)
    assert app.get("/docs").status_code == 404
    assert app.get("/redoc").status_code == 404
    assert app.get("/docs/static/swagger-ui-bundle.js").status_code == 404
    assert app.get("/openapi.json").status_code == 200
