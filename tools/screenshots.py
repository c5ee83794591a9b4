"""The README's dashboard screenshots, from the real model, card and data.

    make screenshots        # python -m tools.screenshots, after `make demo` (and `make audit`)

Starts the service on loopback (velocity pushes off: the demo's store is left as it is),
sends the last transactions of ``data/v1`` through ``/v1/predict``, then drives headless
Chromium (Debian's, set up by ``tools/browser.py`` as for the browser tests) over each
page: Live, Score (a transaction filled in and scored), Batch (a file uploaded and scored),
Rules, Review and Model. Writes ``docs/img/dashboard-*.png``.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.server import app_env, free_port, start
from benchmarks.transactions import csv_row, request_body
from tools.browser import CHROMEDRIVER, DESKTOP, PHONE, chrome_options, set_fields, set_viewport

ROOT = Path(__file__).resolve().parents[1]


def _post(port: int, path: str, body: object) -> dict[str, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {payload}")
    result: dict[str, object] = payload
    return result


def _wait(driver: webdriver.Chrome, css: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(ready.presence_of_element_located((By.CSS_SELECTOR, css)))


def _save(driver: webdriver.Chrome, out: Path, name: str) -> None:
    path = out / f"dashboard-{name}.png"
    path.write_bytes(driver.get_screenshot_as_png())
    print(f"screenshots: {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data/v1/transactions.parquet")
    parser.add_argument("--traffic", type=int, default=600, help="transactions sent first")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img")
    args = parser.parse_args(argv)
    stream = pd.read_parquet(args.data).sort_values("timestamp")
    traffic = stream.tail(args.traffic)
    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    port = free_port()
    env = app_env(port, work, VELOCITY_PUSH="false")
    server = start([sys.executable, "-m", "app"], port, env, None, work / "server.log")
    os.environ["SE_OFFLINE"] = "true"
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=chrome_options(work / "profile")
    )
    try:
        scored = {
            row.transaction_id: _post(port, "/v1/predict", request_body(row))["fraud_probability"]
            for row in traffic.itertuples()
        }
        base = f"http://127.0.0.1:{port}/dashboard"
        args.out.mkdir(parents=True, exist_ok=True)
        set_viewport(driver, 1280, 1000)
        driver.get(f"{base}/live")
        _wait(driver, 'body[data-loaded="true"]')
        _save(driver, args.out, "live")
        set_viewport(driver, *PHONE)
        driver.get(f"{base}/live")
        _wait(driver, 'body[data-loaded="true"]')
        _save(driver, args.out, "live-phone")

        set_viewport(driver, 1280, 1100)
        driver.get(f"{base}/score")
        frauds = traffic[traffic.is_fraud == 1]  # show a caught one, with its reasons
        fraud = frauds.loc[frauds.transaction_id.map(scored).astype(float).idxmax()]
        body = request_body(fraud)
        for name in ("customer_id", "terminal_id", "amount", "distance_from_home_km"):
            driver.find_element(By.ID, f"f-{name}").clear()
            driver.find_element(By.ID, f"f-{name}").send_keys(str(body[name]))
        names = ("merchant_category", "channel", "entry_mode")
        set_fields(driver, {"timestamp": str(body["timestamp"])[:19]} | {n: body[n] for n in names})
        if body["is_foreign"]:
            driver.find_element(By.ID, "f-is_foreign").click()
        driver.find_element(By.ID, "score-submit").click()
        _wait(driver, 'body[data-scored="true"]')
        _save(driver, args.out, "score")

        upload = work / "transactions.csv"
        rows = [csv_row(r) for r in stream.tail(2000).itertuples()]
        rows.insert(3, {**rows[0], "transaction_id": "bad-row-1", "amount": "twelve"})
        rows.insert(40, {**rows[1], "transaction_id": "bad-row-2", "timestamp": "2025-06-31"})
        with upload.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        set_viewport(driver, 1280, 1000)
        driver.get(f"{base}/batch")
        driver.find_element(By.ID, "batch-file").send_keys(str(upload))
        driver.find_element(By.ID, "batch-submit").click()
        _wait(driver, 'body[data-batch="done"]')
        _save(driver, args.out, "batch")

        for page in ("rules", "review"):  # the fraud-operations pages
            set_viewport(driver, 1280, 1400)
            driver.get(f"{base}/{page}")
            _wait(driver, "#dry-run-form" if page == "rules" else 'body[data-loaded="true"]')
            _save(driver, args.out, page)

        set_viewport(driver, 1280, 1400)
        driver.get(f"{base}/model")
        _wait(driver, "main h1")
        time.sleep(0.5)
        _save(driver, args.out, "model")
        audit = driver.find_elements(By.ID, "h-audit")
        if audit:
            driver.execute_script("arguments[0].scrollIntoView()", audit[0])
            time.sleep(1.0)  # lazy plots
            _save(driver, args.out, "model-audit")
        set_viewport(driver, *DESKTOP)
    finally:
        driver.quit()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
