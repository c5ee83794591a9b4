"""The browser-test harness itself, on small static pages (no dashboard needed)."""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    axe_violations,
    console_errors,
    focus_visible,
    format_violations,
    no_horizontal_overflow,
    press,
    screenshot,
    set_viewport,
)

CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>{title}</title>
<style>body {{ font: 16px/1.5 sans-serif; color: #111; background: #fff; margin: 0 }}</style>
</head><body><main>
"""
PAGES = {
    "form.html": """<h1>Echo</h1>
<form id="f"><label for="name">Name</label> <input id="name" type="text">
<button type="submit" id="go">Echo</button></form>
<p id="out" role="status"></p>
<script src="form.js"></script>""",
    "form.js": """document.getElementById("f").addEventListener("submit", (event) => {
  event.preventDefault();
  document.getElementById("out").textContent =
    "Hello, " + document.getElementById("name").value + "!";
});""",
    "tall.html": """<h1>Tall</h1><div style="height: 3000px; background: #eef">3000 px</div>
<p>end</p>""",
    "wide.html": """<h1>Wide</h1><div style="width: 1000px">1000 px wide</div>""",
    "no-meta-viewport.html": """<!doctype html><html lang="en"><head><title>old</title></head>
<body><h1>No meta viewport</h1><p>Laid out 980 px wide on a phone.</p></body></html>""",
    "clean.html": """<h1>Clean</h1><p>Readable text.</p><a href="form.html">A form</a>""",
    "low-contrast.html": """<h1>Faint</h1><p id="faint" style="color: #ccc">Grey on white.</p>""",
    "errors.html": """<h1>Errors</h1><script src="errors.js"></script>
<script>document.title = "inline script ran";</script>""",
    "errors.js": """console.error("deliberate console error");""",
    "no-focus-ring.html": """<h1>Focus</h1><button id="plain">Plain</button>
<button id="hidden" style="outline: none">No ring</button>""",
}


class _Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pages above over HTTP on 127.0.0.1 (a free port), with a strict CSP."""
    root = tmp_path_factory.mktemp("site")
    for name, body in PAGES.items():
        title = name.removesuffix(".html").replace("-", " ")
        text = HEAD.format(title=title) + body + "\n</main></body></html>\n"
        whole = name.endswith(".js") or body.startswith("<!doctype")
        (root / name).write_text(body if whole else text, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_keyboard_only_form(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/form.html")
    press(chrome, Keys.TAB)
    assert chrome.switch_to.active_element.get_attribute("id") == "name"
    assert focus_visible(chrome)
    press(chrome, "Ada", Keys.TAB)
    assert chrome.switch_to.active_element.get_attribute("id") == "go"
    press(chrome, Keys.ENTER)
    assert chrome.find_element(By.ID, "out").text == "Hello, Ada!"
    assert console_errors(chrome) == []


def test_focus_visible_detects_a_removed_outline(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/no-focus-ring.html")
    press(chrome, Keys.TAB)
    assert chrome.switch_to.active_element.get_attribute("id") == "plain"
    assert focus_visible(chrome)
    press(chrome, Keys.TAB)
    assert chrome.switch_to.active_element.get_attribute("id") == "hidden"
    assert not focus_visible(chrome)


@pytest.mark.parametrize(("label", "size"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_viewport_and_full_page_screenshot(
    chrome: WebDriver, site: str, label: str, size: tuple[int, int]
) -> None:
    width, height = size
    set_viewport(chrome, width, height)
    chrome.get(f"{site}/tall.html")
    inner = chrome.execute_script("return [innerWidth, innerHeight, devicePixelRatio]")
    assert inner == [width, height, 1]
    page_height = chrome.execute_script("return document.documentElement.scrollHeight")
    assert page_height > 3000
    assert no_horizontal_overflow(chrome)

    path = screenshot(chrome, f"harness-tall-{label}")
    assert (
        path == Path(__file__).resolve().parents[2] / f"build/screenshots/harness-tall-{label}.png"
    )
    assert png_size(path) == (width, page_height)
    # The page is as it was: same viewport, same layout width (scrollbar back on desktop).
    client = chrome.execute_script("return [innerWidth, document.documentElement.clientWidth]")
    assert client == [width, width if label == "phone" else width - 15]


def test_screenshot_scales_with_device_pixel_ratio(chrome: WebDriver, site: str) -> None:
    set_viewport(chrome, *PHONE, scale=2)
    chrome.get(f"{site}/clean.html")
    assert chrome.execute_script("return devicePixelRatio") == 2
    assert png_size(screenshot(chrome, "harness-clean-phone-2x")) == (2 * PHONE[0], 2 * PHONE[1])


def test_horizontal_overflow_is_detected(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/wide.html")
    assert no_horizontal_overflow(chrome)  # 1000 px fits the desktop
    set_viewport(chrome, 990, 900)  # a desktop window a little narrower than the page
    chrome.get(f"{site}/wide.html")
    assert not no_horizontal_overflow(chrome)
    set_viewport(chrome, *PHONE)
    chrome.get(f"{site}/wide.html")
    assert not no_horizontal_overflow(chrome)
    assert png_size(screenshot(chrome, "harness-wide-phone"))[0] >= 1000  # all of it
    chrome.get(f"{site}/no-meta-viewport.html")
    assert chrome.execute_script("return innerWidth") == 980
    assert not no_horizontal_overflow(chrome)


def test_axe_passes_a_clean_page(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/clean.html")
    violations = axe_violations(chrome)
    assert violations == [], format_violations(violations)
    assert console_errors(chrome) == []  # injected through WebDriver: no CSP refusal


def test_axe_reports_low_contrast(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/low-contrast.html")
    violations = axe_violations(chrome)
    assert [v.id for v in violations] == ["color-contrast"], format_violations(violations)
    assert violations[0].targets == ["#faint"]
    message = format_violations(violations)
    assert "color-contrast (serious)" in message and "#faint" in message
    # Run again on the same page: axe is not injected twice and gives the same answer.
    assert axe_violations(chrome) == violations
    assert axe_violations(chrome, disabled_rules=["color-contrast"]) == []


def test_console_errors_and_csp_refusals_are_caught(chrome: WebDriver, site: str) -> None:
    chrome.get(f"{site}/errors.html")
    errors = console_errors(chrome)
    assert any("deliberate console error" in e for e in errors), errors
    assert any("Content Security Policy" in e for e in errors), errors
    assert chrome.title == "errors"  # the inline script was refused
    assert console_errors(chrome) == []  # the log was drained


def test_each_test_starts_clean(chrome: WebDriver) -> None:
    assert chrome.current_url == "about:blank"
    assert chrome.execute_script("return [innerWidth, innerHeight]") == list(DESKTOP)
    assert console_errors(chrome) == []
