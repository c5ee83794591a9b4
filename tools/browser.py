"""Headless Chromium from Debian's packages, driven by Selenium: the options, the exact
viewport and form filling that ``make screenshots`` (``tools/screenshots.py``) and the
browser tests (``tests/browser/conftest.py``) share.

``make install`` puts ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` in place (apt-get
``chromium chromium-driver``). Nothing is downloaded: the driver path is given to Selenium,
so Selenium Manager never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

PHONE = (390, 844)
DESKTOP = (1280, 900)
# Below this width set_viewport emulates a mobile device (see there).
MOBILE_BELOW = 768

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No connection of Chromium's own: the test machines' network is closed.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Same rendering everywhere: English UI strings, sRGB colours in the screenshots.
    "--lang=en-US",
    "--force-color-profile=srgb",
    f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
)

# Per browser session: the device metrics set_viewport last applied.
_metrics: dict[str, dict[str, Any]] = {}


def chrome_options(profile: Path) -> webdriver.ChromeOptions:
    """Debian's Chromium, headless, with the profile in ``profile`` and the console log on."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def set_viewport(
    driver: WebDriver, width: int, height: int, *, mobile: bool | None = None, scale: float = 1
) -> None:
    """Make the CSS viewport exactly ``width`` x ``height`` (``window.innerWidth/innerHeight``).

    The window size is not the viewport in headless Chromium (1280x900 leaves 1280x757, and
    windows are at least 500 px wide), so this overrides the device metrics instead; it holds
    across navigations until the next call. ``mobile`` (default: width < 768) emulates a
    phone: ``<meta name="viewport">`` is honoured (a page without one is laid out 980 px wide)
    and scrollbars overlay the page; on desktop a vertical scrollbar takes 15 px of the
    layout width. ``scale`` is ``devicePixelRatio`` (screenshots are ``scale`` x larger).
    """
    metrics = {
        "width": width,
        "height": height,
        "deviceScaleFactor": scale,
        "mobile": width < MOBILE_BELOW if mobile is None else mobile,
    }
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    _metrics[driver.session_id or ""] = metrics


def viewport_metrics(driver: WebDriver) -> dict[str, Any] | None:
    """The device metrics :func:`set_viewport` last applied to ``driver``'s session."""
    return _metrics.get(driver.session_id or "")


def forget_viewport(driver: WebDriver) -> None:
    """Drop what :func:`set_viewport` recorded for ``driver`` (when it quits)."""
    _metrics.pop(driver.session_id or "", None)


def set_fields(driver: WebDriver, values: dict[str, object]) -> None:
    """Set form fields ``#f-<name>`` directly (selects and the date-time field, whose
    keyboard entry depends on the browser's locale)."""
    for name, value in values.items():
        element = driver.find_element("css selector", f"#f-{name}")
        driver.execute_script("arguments[0].value = arguments[1]", element, str(value))
