"""The dashboard in headless Chromium, against the real service (``python -m app`` on
loopback, API keys on): sign in by keyboard, every page at phone and desktop widths with
no accessibility violations, a transaction scored through the form, a CSV uploaded and the
scored file read back. Screenshots go to ``build/screenshots/``."""

from __future__ import annotations

import csv
import http.client
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.server import Server
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
    set_fields,
    set_viewport,
)
from tests.reliability.processes import free_port, post, serve
from tests.serving import as_csv_row, as_request

pytestmark = pytest.mark.integration

KEY = "browser-test-key"
TRAFFIC = 40
PAGES = ("live", "score", "batch", "model")


@pytest.fixture(scope="module")
def service(
    carded: tuple[Path, Path],
    feast_repo: Path,
    recent: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The real service with the carded tiny bundle and its card, and some traffic."""
    bundle, card = carded
    state = tmp_path_factory.mktemp("dashboard-service")
    port = free_port()
    server: Server = serve(
        port,
        bundle,
        feast_repo,
        state,
        state / "server.log",
        MODEL_CARD_DIR=str(card),
        API_KEYS=KEY,
        VELOCITY_PUSH="false",
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for row in recent.iloc[:TRAFFIC].itertuples():
            status, _ = post(connection, "/v1/predict", as_request(row), {"X-API-Key": KEY})
            assert status == 200
        connection.close()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _wait(driver: WebDriver, selector: str, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout).until(
        ready.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def _sign_in(driver: WebDriver, base: str, page: str = "live") -> None:
    driver.get(f"{base}/dashboard/{page}")
    WebDriverWait(driver, 20).until(ready.url_contains("/dashboard/login"))
    field = _wait(driver, "#api-key")
    field.click()
    field.send_keys(KEY, Keys.ENTER)
    WebDriverWait(driver, 20).until(ready.url_to_be(f"{base}/dashboard/{page}"))


def _page_ready(driver: WebDriver, page: str) -> None:
    if page == "live":
        _wait(driver, 'body[data-loaded="true"]')
    else:
        _wait(driver, "main h1")


def _check_page(driver: WebDriver, name: str) -> None:
    violations = axe_violations(driver)
    assert not violations, format_violations(violations)
    assert no_horizontal_overflow(driver), f"{name}: the page scrolls sideways"
    assert console_errors(driver) == [], name


def test_sign_in_and_every_page_at_phone_and_desktop(
    chrome: WebDriver, service: str, recent: pd.DataFrame
) -> None:
    driver = chrome
    driver.get(f"{service}/dashboard/live")
    assert "/dashboard/login?next=/dashboard/live" in driver.current_url
    _wait(driver, "#api-key").send_keys("not-the-key", Keys.ENTER)
    error = WebDriverWait(driver, 10).until(
        ready.visibility_of_element_located((By.ID, "login-error"))
    )
    assert "not valid" in error.text
    # Chromium logs the refused sign-in's 401; that is the only error.
    logged = console_errors(driver)
    assert len(logged) == 1 and "/dashboard/api/session" in logged[0] and "401" in logged[0]
    _check_page(driver, "login")
    screenshot(driver, "dashboard-login-desktop")
    _sign_in(driver, service)
    for width, height, label in ((*DESKTOP, "desktop"), (*PHONE, "phone")):
        set_viewport(driver, width, height)
        for page in PAGES:
            driver.get(f"{service}/dashboard/{page}")
            _page_ready(driver, page)
            _check_page(driver, f"{page} ({label})")
            screenshot(driver, f"dashboard-{page}-{label}")
    # The Live page reads the service's own numbers: the traffic sent above.
    set_viewport(driver, *DESKTOP)
    driver.get(f"{service}/dashboard/live")
    _page_ready(driver, "live")
    assert driver.find_element(By.CSS_SELECTOR, '[data-stat="transactions"]').text == str(TRAFFIC)
    cells = driver.find_elements(By.CSS_SELECTOR, "#recent-table tbody tr")
    assert len(cells) == TRAFFIC
    first_row = cells[0].text
    newest = recent.iloc[TRAFFIC - 1]
    assert "••••" + newest.transaction_id[-4:] in first_row
    assert newest.customer_id not in driver.page_source
    assert driver.find_elements(By.CSS_SELECTOR, "#score-chart svg[role=img][aria-label]")
    # Pausing stops the updates and says so; the button reports its state.
    toggle = driver.find_element(By.ID, "live-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert driver.find_element(By.ID, "live-status").text == "Updates paused"
    # Every plot of the model card loads.
    driver.get(f"{service}/dashboard/model")
    images = driver.find_elements(By.CSS_SELECTOR, "figure img")
    assert images
    for image in images:
        driver.execute_script("arguments[0].scrollIntoView()", image)  # they load lazily
        WebDriverWait(driver, 10).until(
            lambda d, i=image: d.execute_script("return arguments[0].complete", i)
        )
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 0
        assert image.get_attribute("alt")


def _api_score(base: str, body: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection(base.split("//")[1], timeout=30)
    status, answer = post(connection, "/dashboard/api/score", body, {"X-API-Key": KEY})
    connection.close()
    assert status == 200
    result: dict[str, Any] = answer
    return result


def test_score_a_transaction_with_the_keyboard(
    chrome: WebDriver, service: str, recent: pd.DataFrame
) -> None:
    driver = chrome
    _sign_in(driver, service, "score")
    _wait(driver, "#score-form")
    row = as_request(recent.iloc[3])
    # An invalid amount: the form says what is wrong and where, and scores nothing.
    driver.find_element(By.ID, "f-customer_id").send_keys(row["customer_id"])
    driver.find_element(By.ID, "f-terminal_id").send_keys(row["terminal_id"])
    driver.find_element(By.ID, "f-amount").send_keys("-5")
    driver.find_element(By.ID, "score-submit").click()
    summary = WebDriverWait(driver, 10).until(
        ready.visibility_of_element_located((By.ID, "form-errors"))
    )
    assert "Amount: Input should be greater than or equal to 0.01" in summary.text
    assert driver.switch_to.active_element == summary  # focus moves to the errors
    assert driver.find_element(By.ID, "f-amount").get_attribute("aria-invalid") == "true"
    assert driver.find_elements(By.CSS_SELECTOR, "[data-result]") == []
    logged = console_errors(driver)  # the API's 422 is the only error Chromium logs
    assert len(logged) == 1 and "/dashboard/api/score" in logged[0] and "422" in logged[0]
    _check_page(driver, "score with errors")
    # Fix it with the keyboard only: type the amount, tab to Score, press Enter.
    amount = driver.find_element(By.ID, "f-amount")
    amount.clear()
    amount.send_keys(str(row["amount"]))
    names = ("merchant_category", "channel", "entry_mode", "distance_from_home_km")
    set_fields(driver, {"timestamp": row["timestamp"][:19]} | {n: row[n] for n in names})
    if row["is_foreign"]:
        driver.find_element(By.ID, "f-is_foreign").send_keys(Keys.SPACE)
    amount.click()
    for _ in range(40):  # to the Score button (the date-time field takes a tab per part)
        press(driver, Keys.TAB)
        if driver.switch_to.active_element.get_attribute("id") == "score-submit":
            break
    assert driver.switch_to.active_element.get_attribute("id") == "score-submit"
    assert focus_visible(driver), "the focused button shows no focus ring"
    press(driver, Keys.ENTER)
    _wait(driver, 'body[data-scored="true"]')
    transaction_id = driver.find_element(By.ID, "f-transaction_id").get_attribute("value")
    expected = _api_score(service, {**row, "transaction_id": transaction_id})
    shown = driver.find_element(By.CSS_SELECTOR, '[data-result="probability"]').text
    assert shown == f"{expected['answer']['fraud_probability']:.3f}"
    decision = driver.find_element(By.CSS_SELECTOR, '[data-result="decision"]').text
    assert decision == expected["answer"]["decision"].replace("_", " ")
    text = driver.find_element(By.ID, "score-result").text
    assert expected["explanation"]["summary"] in text
    for reason in expected["explanation"]["reasons"]:
        assert reason["text"] in text
    assert "not recorded (what-if)" in text
    _check_page(driver, "score result")
    screenshot(driver, "dashboard-score-result-desktop")
    set_viewport(driver, *PHONE)
    assert no_horizontal_overflow(driver)
    screenshot(driver, "dashboard-score-result-phone")


def test_upload_a_csv_and_download_the_scored_file(
    chrome: WebDriver, service: str, recent: pd.DataFrame, tmp_path: Path
) -> None:
    driver = chrome
    rows = [as_csv_row(r) for r in recent.iloc[:120].itertuples()]
    rows.insert(7, {**rows[0], "transaction_id": "broken-row", "timestamp": "soon"})
    upload = tmp_path / "transactions.csv"
    with upload.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _sign_in(driver, service, "batch")
    driver.find_element(By.ID, "batch-file").send_keys(str(upload))
    driver.find_element(By.ID, "batch-submit").click()
    _wait(driver, 'body[data-batch="done"]', timeout=60)
    progress = driver.find_element(By.ID, "batch-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == str(len(rows))
    invalid = driver.find_element(By.ID, "batch-invalid-table").text
    assert "broken-row" in invalid and "timestamp" in invalid and "9" in invalid  # line 9
    link = driver.find_element(By.ID, "batch-download")
    assert link.get_attribute("download") == "transactions-scored.csv"
    href = link.get_attribute("href")
    assert href.startswith("blob:")
    downloads = tmp_path / "downloads"
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    link.click()
    target = downloads / "transactions-scored.csv"
    WebDriverWait(driver, 20).until(lambda _: target.is_file() and target.stat().st_size > 0)
    text = target.read_text()
    scored = list(csv.DictReader(io.StringIO(text)))
    assert [r["transaction_id"] for r in scored] == [r["transaction_id"] for r in rows]
    assert scored[7]["error"] and scored[7]["fraud_probability"] == ""
    assert all(
        r["risk_level"] in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
        for i, r in enumerate(scored)
        if i != 7
    )
    summary = driver.find_element(By.ID, "batch-summary").text
    assert f"Scored {len(rows) - 1} of {len(rows)} rows" in summary
    _check_page(driver, "batch done")
    screenshot(driver, "dashboard-batch-result-desktop")
    # The same file, checked by the API's own batch route, gets the same decisions.
    connection = http.client.HTTPConnection(service.split("//")[1], timeout=30)
    good = [as_request(r) for r in recent.iloc[:120].itertuples()]
    status, answer = post(connection, "/dashboard/api/score", good[0], {"X-API-Key": KEY})
    assert status == 200
    assert answer["answer"]["decision"] == scored[0]["decision"]
    # The CSV cell is the probability to 6 decimals (app/schemas/answers.py); comparing
    # prefixes of the two texts fails whenever that rounding carries a digit.
    assert f"{answer['answer']['fraud_probability']:.6f}" == scored[0]["fraud_probability"]
