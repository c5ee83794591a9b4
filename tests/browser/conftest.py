"""Browser tests: headless Chromium from Debian's packages, driven by Selenium.

``make install`` puts ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` in place (apt-get
``chromium chromium-driver``) and axe-core in ``tools/axe/node_modules`` (npm). Nothing is
downloaded at test time: the driver path is given to Selenium, so Selenium Manager never
runs (and ``SE_OFFLINE`` forbids it the network if it did).

Fixture and helpers (every test under ``tests/browser`` is marked ``slow`` and ``browser``):

- ``chrome``: a ``webdriver.Chrome`` on ``about:blank`` with a desktop viewport (1280x900),
  no cookies and an empty console log. One Chromium per test module (start-up ~1 s); other
  site data (localStorage, cache) lives as long as that module's browser.
- ``set_viewport(driver, width, height)``: the exact CSS viewport (``PHONE``, ``DESKTOP``),
  and ``set_fields``, from ``tools/browser.py`` (shared with ``make screenshots``).
- ``screenshot(driver, name)``: a full-page PNG, ``build/screenshots/<name>.png`` (a CI
  artifact). A failing test also leaves ``failed-<test>.png`` there.
- ``axe_violations(driver)`` and ``format_violations(...)``: axe-core's WCAG 2.1 A/AA checks.
- ``console_errors(driver)``: the console's errors (JS errors, CSP refusals, failed loads).
- ``no_horizontal_overflow(driver)``, ``press(driver, *keys)``, ``focus_visible(driver)``.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains

from tools.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    DESKTOP,
    PHONE,
    chrome_options,
    forget_viewport,
    set_fields,
    set_viewport,
    viewport_metrics,
)

# Helpers the browser tests import from here; the Chromium set-up is tools/browser.py's.
__all__ = [
    "DESKTOP",
    "PHONE",
    "axe_violations",
    "console_errors",
    "focus_visible",
    "format_violations",
    "no_horizontal_overflow",
    "press",
    "screenshot",
    "set_fields",
    "set_viewport",
]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AXE = ROOT / "tools/axe/node_modules/axe-core/axe.min.js"
SCREENSHOTS = ROOT / "build/screenshots"
INSTALL_HINT = "run `make install` (installs Debian's chromium and chromium-driver)"

WCAG_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is ``slow`` and ``browser`` (before ``-m`` deselects)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="module")
def chrome_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium per test module, with a fresh profile; use ``chrome``."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: {INSTALL_HINT}", pytrace=False)
    tmp = tmp_path_factory.mktemp("chromium")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager (not used here): no network
        env.setenv("SE_AVOID_STATS", "true")
        service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp / "chromedriver.log"))
        driver = webdriver.Chrome(service=service, options=chrome_options(tmp / "profile"))
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(30)
            yield driver
        finally:
            forget_viewport(driver)
            driver.quit()


@pytest.fixture
def chrome(chrome_session: WebDriver, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """The module's Chromium, reset: ``about:blank``, desktop viewport, no cookies, empty log.

    When the test fails, the page it left is saved as ``build/screenshots/failed-<test>.png``.
    """
    driver = chrome_session
    failed = f"failed-{request.node.name}"
    _png(failed).unlink(missing_ok=True)  # from an earlier run
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    set_viewport(driver, *DESKTOP)
    _browser_log(driver)  # drop what earlier tests left
    yield driver
    reports = request.node.stash.get(_REPORTS, {})
    if any(report.failed for report in reports.values()):
        try:
            screenshot(driver, failed)
        except Exception as error:  # the browser may be what failed
            print(f"no screenshot of the failure: {error!r}")


def _png(name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "page"
    return SCREENSHOTS / f"{safe}.png"


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save the whole page (not only the viewport) as ``build/screenshots/<name>.png``.

    The PNG is max(viewport, page) wide and tall, times ``devicePixelRatio``. Returns its path.
    """
    path = _png(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    clip = {
        "x": 0,
        "y": 0,
        "width": max(content["width"], inner[0]),
        "height": max(content["height"], inner[1]),
        "scale": 1,
    }
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    # Capturing beyond the viewport leaves the layout without its scrollbar until the next
    # navigation: setting the metrics again puts the page back as it was.
    metrics = viewport_metrics(driver)
    if metrics is not None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@dataclass(frozen=True)
class Violation:
    """One failed axe-core rule and the elements (CSS selectors) that fail it."""

    id: str
    impact: str | None
    help: str
    help_url: str
    targets: list[str]
    summaries: list[str]


@functools.cache
def _axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"{AXE.relative_to(ROOT)} not found: run `make install`", pytrace=False)
    return AXE.read_text(encoding="utf-8")


_RUN_AXE = """
const [tags, disabled, done] = arguments;
const rules = Object.fromEntries(disabled.map((id) => [id, {enabled: false}]));
axe.run(document, {runOnly: {type: "tag", values: tags}, rules, resultTypes: ["violations"]})
  .then((result) => done(result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map((n) => n.target.map((t) => [].concat(t).join(" >>> ")).join(" >> ")),
    summaries: v.nodes.map((n) => n.failureSummary || ""),
  }))))
  .catch((error) => done({error: String(error && error.stack || error)}));
"""


def axe_violations(
    driver: WebDriver, tags: Sequence[str] = WCAG_AA, *, disabled_rules: Sequence[str] = ()
) -> list[Violation]:
    """Run axe-core on the current page for the given rule tags; the rules that fail.

    Injected once per page load (through WebDriver, so the page's CSP does not apply).
    """
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(_axe_source())
    result = driver.execute_async_script(_RUN_AXE, list(tags), list(disabled_rules))
    if isinstance(result, dict):
        raise AssertionError(f"axe.run failed: {result.get('error')}")
    return [
        Violation(
            id=v["id"],
            impact=v["impact"],
            help=v["help"],
            help_url=v["helpUrl"],
            targets=list(v["targets"]),
            summaries=list(v["summaries"]),
        )
        for v in result
    ]


def format_violations(violations: Sequence[Violation]) -> str:
    """An assertion message: each rule, its help page, and each failing element with why."""
    lines = [f"{len(violations)} axe-core violation(s):"]
    for v in violations:
        lines.append(f"- {v.id} ({v.impact}): {v.help} <{v.help_url}>")
        for target, summary in zip(v.targets, v.summaries, strict=True):
            why = " ".join(summary.split())
            lines.append(f"    {target}: {why}" if why else f"    {target}")
    return "\n".join(lines)


def no_horizontal_overflow(driver: WebDriver) -> bool:
    """Whether the page fits the viewport's width: nothing to scroll sideways.

    Against ``documentElement.clientWidth`` and the width ``set_viewport`` emulates, not
    ``innerWidth``: on a phone the layout viewport (``innerWidth``) grows to whatever
    overflows, or is 980 px for a page without ``<meta name="viewport">`` (false here too);
    on a desktop ``innerWidth`` includes the vertical scrollbar.
    """
    metrics = viewport_metrics(driver)
    return bool(
        driver.execute_script(
            "const root = document.documentElement;"
            "return root.scrollWidth <= Math.min(root.clientWidth, arguments[0] || Infinity);",
            metrics["width"] if metrics else None,
        )
    )


def console_errors(driver: WebDriver) -> list[str]:
    """The console's errors since the last call (the log is drained when read).

    Uncaught exceptions, ``console.error``, CSP refusals and failed loads (a 404 favicon too).
    """
    return [e["message"] for e in _browser_log(driver) if e["level"] == "SEVERE"]


def _browser_log(driver: WebDriver) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def press(driver: WebDriver, *keys: str) -> None:
    """Type keys (``Keys.TAB``, ``Keys.ENTER``, text) into whatever has the focus."""
    ActionChains(driver).send_keys(*keys).perform()


def focus_visible(driver: WebDriver) -> bool:
    """Whether the focused element draws a focus indicator (outline or box-shadow).

    Meaningful after keyboard navigation (``:focus-visible``), e.g. after ``press(TAB)``.
    """
    return bool(
        driver.execute_script(
            """
            const el = document.activeElement;
            if (!el || el === document.body) return false;
            const style = getComputedStyle(el);
            const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
            return outline || style.boxShadow !== "none";
            """
        )
    )
