"""The fraud-operations pages in headless Chromium against the real service (rule file
with a block rule that sends a marked amount to review; six transactions scored, two of
them queued): the Rules page's dry-run, the Review page's claim and outcome, and both
pages (and the Model page's Shadow section) at phone and desktop widths with no
accessibility violations and no console errors."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from app.services.api_keys import key_id
from benchmarks.server import Server
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    axe_violations,
    console_errors,
    format_violations,
    no_horizontal_overflow,
    screenshot,
    set_viewport,
)
from tests.dashboard.test_operations_api import (
    CANDIDATE_RULE,
    KEY,
    OTHER,
    rule_file,
    transactions,
)
from tests.reliability.processes import free_port, post, serve

pytestmark = pytest.mark.integration


def _queued(port: int, n: int) -> int:
    deadline = time.monotonic() + 20
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/v1/review/queue", headers={"X-API-Key": KEY})
        items = json.loads(connection.getresponse().read())["items"]
        connection.close()
        if len(items) >= n or time.monotonic() > deadline:
            return len(items)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def service(
    tiny_bundle: Path,
    feast_repo: Path,
    recent: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    state = tmp_path_factory.mktemp("operations-service")
    port = free_port()
    server: Server = serve(
        port,
        tiny_bundle,
        feast_repo,
        state,
        state / "server.log",
        API_KEYS=f"{KEY},{OTHER}",
        RULES_FILE=str(rule_file(state)),
        RECORD_SHIP_INTERVAL_MS="20",
        VELOCITY_PUSH="false",
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in transactions(recent, 6, review=2):
            status, _ = post(connection, "/v1/predict", body, {"X-API-Key": KEY})
            assert status == 200
        connection.close()
        assert _queued(port, 2) == 2
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _wait(driver: WebDriver, css: str, timeout: float = 15) -> None:
    WebDriverWait(driver, timeout).until(ready.presence_of_element_located((By.CSS_SELECTOR, css)))


def _sign_in(driver: WebDriver, base: str, page: str) -> None:
    driver.get(f"{base}/dashboard/{page}")
    WebDriverWait(driver, 15).until(ready.url_contains("/dashboard/login"))
    _wait(driver, "#api-key")
    driver.find_element(By.ID, "api-key").send_keys(KEY, Keys.ENTER)
    WebDriverWait(driver, 15).until(ready.url_to_be(f"{base}/dashboard/{page}"))


def _text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_rules_page_shows_the_set_and_runs_a_dry_run(chrome: WebDriver, service: str) -> None:
    driver = chrome
    _sign_in(driver, service, "rules")
    assert "review_marked_amount" in _text(driver, "#h-rules + p + .table-wrap")
    rules = driver.find_element(By.ID, "dry-rules")
    assert 'version: "test-ops.1"' in str(rules.get_attribute("value"))
    driver.execute_script("arguments[0].value += arguments[1]", rules, CANDIDATE_RULE)
    driver.find_element(By.ID, "dry-run-submit").click()
    _wait(driver, 'body[data-dry-run="done"]')
    assert _text(driver, '[data-fact="Rows"]') == "6"
    assert _text(driver, '[data-fact="Decisions changed"]') == "2"
    changes = _text(driver, '[aria-label="Decision changes"]')
    assert "review → decline 2" in changes
    per_rule = _text(driver, '[aria-label="Per rule"]')
    assert "decline_large block 2 0 – – 2" in per_rule
    screenshot(driver, "dashboard-rules-dry-run")
    # A rule set that does not validate: the message, readable, and no report.
    driver.execute_script(
        "arguments[0].value = arguments[0].value.replace('request.amount', 'request.amout')",
        rules,
    )
    driver.find_element(By.ID, "dry-run-submit").click()
    WebDriverWait(driver, 10).until(ready.visibility_of_element_located((By.ID, "dry-run-error")))
    message = _text(driver, "#dry-run-message")
    assert "unknown field request.amout" in message and "review_marked_amount" in message
    assert driver.find_elements(By.CSS_SELECTOR, "#dry-run-result *") == []
    logged = console_errors(driver)  # Chromium logs the 422; nothing else
    assert len(logged) == 1 and "dry-run" in logged[0] and "422" in logged[0], logged


def test_review_page_claims_and_records_an_outcome(chrome: WebDriver, service: str) -> None:
    driver = chrome
    _sign_in(driver, service, "review")
    _wait(driver, 'body[data-loaded="true"] article[data-tx="ops-000"]')
    assert _text(driver, '[data-count="open"]') == "2"
    item = driver.find_element(By.CSS_SELECTOR, 'article[data-tx="ops-000"]')
    assert "4,321.00" in item.text and "review_marked_amount" in item.text
    assert "MARKED_AMOUNT" in item.text
    item.find_element(By.XPATH, ".//button[text()='Claim']").click()
    _wait(driver, 'form[data-outcome-for="ops-000"]')
    assert _text(driver, '[data-count="claimed"]') == "1"
    form = driver.find_element(By.CSS_SELECTOR, 'form[data-outcome-for="ops-000"]')
    form.find_element(By.XPATH, ".//label[text()='fraud']").click()
    form.find_element(By.TAG_NAME, "textarea").send_keys("card reported stolen")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(driver, 10).until(
        lambda d: "Recorded fraud for ops-000" in _text(d, "#review-status-text")
    )
    assert not driver.find_elements(By.CSS_SELECTOR, 'article[data-tx="ops-000"]')
    assert _text(driver, '[data-count="resolved"]') == "1"
    Select(driver.find_element(By.ID, "review-status")).select_by_value("resolved")
    _wait(driver, 'article[data-tx="ops-000"]')
    resolved = _text(driver, 'article[data-tx="ops-000"]')
    assert f"resolved: fraud by {key_id(KEY)}" in resolved
    assert "Note: card reported stolen" in resolved
    assert console_errors(driver) == []


def test_pages_at_phone_and_desktop_widths(chrome: WebDriver, service: str) -> None:
    driver = chrome
    _sign_in(driver, service, "rules")
    ready_marks = {"rules": "#dry-run-form", "review": 'body[data-loaded="true"]'}
    for width, height, label in ((*DESKTOP, "desktop"), (*PHONE, "phone")):
        set_viewport(driver, width, height)
        for page in ("rules", "review", "model"):
            driver.get(f"{service}/dashboard/{page}")
            _wait(driver, ready_marks.get(page, "#h-shadow"))
            violations = axe_violations(driver)
            assert not violations, format_violations(violations)
            assert no_horizontal_overflow(driver), f"{page} ({label}) scrolls sideways"
            assert console_errors(driver) == [], f"{page} ({label})"
            screenshot(driver, f"dashboard-{page}-{label}")
