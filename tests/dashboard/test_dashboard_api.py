"""The dashboard through the real app: pages and their headers, sign-in, the live data
against /metrics, what-if scores and file uploads, the model card's files."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.dashboard.pages import CSP, REPORT_CSP
from tests.serving import as_csv_row, as_request

pytestmark = pytest.mark.integration

PAGES = ("live", "score", "batch", "model")


@pytest.fixture
def dash(client_for: Any, carded: tuple[Path, Path]) -> Any:
    """An app serving the carded tiny bundle with its model card; keyword overrides."""
    bundle, card = carded

    def start(**overrides: Any) -> TestClient:
        values = {"bundle_uri": str(bundle), "model_card_dir": card, **overrides}
        client: TestClient = client_for(**values)
        return client

    return start


def _events(body: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_pages_are_served_with_a_strict_policy(dash: Any) -> None:
    client = dash()
    home = client.get("/dashboard", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/dashboard/live"
    for page in PAGES:
        response = client.get(f"/dashboard/{page}")
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert f'<a href="/dashboard/{page}" aria-current="page">' in html
        assert "<script>" not in html and " style=" not in html  # nothing inline
        asset = re.search(r'/dashboard/static/dashboard\.css\?v=([0-9a-f]{12})"', html)
        assert asset is not None
        assert f'src="/dashboard/static/{page}.js?v={asset.group(1)}"' in html
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"
    assert client.get("/dashboard/static/../main.py").status_code == 404
    assert client.get("/dashboard/nope").status_code == 404
    assert not [p for p in client.get("/openapi.json").json()["paths"] if "dashboard" in p]


def test_the_dashboard_can_be_switched_off(dash: Any, recent: pd.DataFrame) -> None:
    client = dash(dashboard_enabled=False)
    assert client.get("/dashboard/live").status_code == 404
    assert client.get("/dashboard/static/dashboard.css").status_code == 404
    assert client.get("/dashboard/api/live").status_code == 404
    assert client.post("/v1/predict", json=as_request(recent.iloc[0])).status_code == 200


def test_pages_link_the_api_reference_only_when_it_is_served(dash: Any) -> None:
    link = '<a href="/docs">API reference</a>'
    assert link in dash().get("/dashboard/live").text
    without = dash(docs_enabled=False)
    assert without.get("/docs").status_code == 404
    assert link not in without.get("/dashboard/live").text


def test_with_api_keys_the_dashboard_needs_a_sign_in(dash: Any) -> None:
    client = dash(api_keys="key-one,key-two")
    page = client.get("/dashboard/model", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/login?next=/dashboard/model"
    assert client.get("/dashboard/api/live").status_code == 401
    assert client.get("/dashboard/card/report").status_code == 401
    login = client.get("/dashboard/login?next=/dashboard/model")
    assert login.status_code == 200 and 'data-next="/dashboard/model"' in login.text
    assert client.get("/dashboard/login?next=//evil.example/x").text.count(
        'data-next="/dashboard/live"'
    )
    assert client.post("/dashboard/api/session", json={"key": "wrong"}).status_code == 401
    signed = client.post("/dashboard/api/session", json={"key": "key-two"})
    assert signed.status_code == 204
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # local: plain http on loopback
    assert "key-two" not in cookie  # the key itself never goes into the cookie
    assert client.get("/dashboard/model").status_code == 200
    assert client.get("/dashboard/api/live").status_code == 200
    # a change from another site is refused even with the cookie
    evil = {"Origin": "https://evil.example"}
    assert client.post("/dashboard/api/score", json={}, headers=evil).status_code == 403
    out = client.delete("/dashboard/api/session")
    assert out.status_code == 204 and "Max-Age=0" in out.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/dashboard/api/live").status_code == 401
    # the API's own header works too (scripts, probes)
    assert client.get("/dashboard/api/live", headers={"X-API-Key": "key-one"}).status_code == 200


def test_the_cookie_is_secure_outside_local(dash: Any) -> None:
    client = dash(
        environment="gke",
        api_keys="key-one",
        pii_hash_key="a-real-secret-key",
        record_url="postgresql://app@127.0.0.1:1/fraud",
    )
    signed = client.post("/dashboard/api/session", json={"key": "key-one"})
    assert signed.status_code == 204 and "Secure" in signed.headers["set-cookie"]


def test_failed_sign_ins_are_throttled_per_address(dash: Any) -> None:
    # no refill during the test, however slow the machine (the default is 2 a second)
    client = dash(api_keys="key-one", dashboard_sign_in_failures_per_second=0.001)
    codes = [client.post("/dashboard/api/session", json={"key": f"guess-{i}"}) for i in range(12)]
    assert [c.status_code for c in codes[:10]] == [401] * 10
    assert codes[10].status_code == 429 and int(codes[10].headers["retry-after"]) >= 1


def test_live_numbers_match_the_service_metrics(dash: Any, recent: pd.DataFrame) -> None:
    client = dash()
    rows = list(recent.iloc[:30].itertuples())
    for row in rows[:20]:
        assert client.post("/v1/predict", json=as_request(row)).status_code == 200
    batch = {"transactions": [as_request(r) for r in rows[20:]]}
    assert client.post("/v1/predict/batch", json=batch).status_code == 200
    live = client.get("/dashboard/api/live").json()
    metrics = client.get("/metrics").text
    window, since = live["window"], live["since_start"]
    assert window["transactions"] == 30 == sum(window["decisions"].values())
    for decision, n in since["decisions"].items():
        assert n == _metric(metrics, "fraud_decisions_total", decision=decision)
        assert window["decisions"][decision] == n  # the window holds everything so far
    assert window["alerts"] == 30 - window["decisions"]["approve"]
    assert window["latency_ms"]["/v1/predict"]["requests"] == 20
    assert window["latency_ms"]["/v1/predict/batch"]["requests"] == 1
    assert since["scoring_responses"] == {"/v1/predict 200": 20, "/v1/predict/batch 200": 1}
    assert live["model"]["version"] == client.get("/v1/model").json()["version"]
    recent_rows = window["recent"]
    assert len(recent_rows) == 30 and recent_rows[0]["transaction"].endswith(
        rows[-1].transaction_id[-4:]
    )
    shown = json.dumps(recent_rows)
    assert not any(r.transaction_id in shown or r.customer_id in shown for r in rows)


def test_what_if_scores_match_the_api_and_are_not_recorded(
    dash: Any, recent: pd.DataFrame, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.sqlite"
    client = dash(audit_log=audit)
    body = as_request(recent.iloc[5])
    what_if = client.post("/dashboard/api/score", json=body)
    assert what_if.status_code == 200
    data = what_if.json()
    assert data["recorded"] is False
    with sqlite3.connect(audit) as db:
        assert db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    assert client.get("/dashboard/api/live").json()["window"]["transactions"] == 0
    assert _metric(client.get("/metrics").text, "fraud_decisions_total") == 0
    real = client.post("/v1/predict", json=body).json()
    answer = data["answer"]
    for key in ("fraud_probability", "risk_level", "decision", "reasons", "model_version"):
        assert answer[key] == real[key], key
    words = data["explanation"]
    assert words["summary"].endswith(".") and real["decision"].replace("_", "-")[:4].lower() in (
        words["summary"].lower()
    )
    assert [r["code"] for r in words["reasons"]] == [r["code"] for r in real["reasons"]]
    assert data["thresholds"] == client.get("/v1/model").json()["thresholds"]
    bad = client.post("/dashboard/api/score", json={**body, "amount": -3, "channel": "fax"})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {
        ("body", "amount"),
        ("body", "channel"),
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_csv_upload_streams_progress_and_the_scored_file(dash: Any, recent: pd.DataFrame) -> None:
    client = dash()
    good = [as_request(r) for r in recent.iloc[:60].itertuples()]
    rows = [as_csv_row(r) for r in recent.iloc[:60].itertuples()]
    rows.insert(10, {**rows[0], "transaction_id": "bad-1", "amount": "lots"})
    rows.append({**rows[1], "transaction_id": "bad-2", "timestamp": "2025-13-45"})
    response = client.post(
        "/dashboard/api/batch", content=_csv(rows), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    events = _events(response.text)
    accepted, *chunks, done = events
    assert accepted["event"] == "accepted" and accepted["rows"] == 62
    assert accepted["invalid"] == 2
    assert [(e["line"], e["transaction_id"]) for e in accepted["errors"]] == [
        (12, "bad-1"),
        (63, "bad-2"),
    ]
    assert "amount" in accepted["errors"][0]["error"]
    assert "lots" not in json.dumps(accepted["errors"])  # the message never repeats the value
    assert len(chunks) >= 2 and all(c["event"] == "chunk" for c in chunks)
    assert [c["done"] for c in chunks] == sorted(c["done"] for c in chunks)
    assert chunks[-1]["done"] == 62
    assert done["event"] == "done" and done["scored"] == 60 and done["invalid"] == 2
    scored = list(
        csv.DictReader(io.StringIO(accepted["header"] + "".join(c["csv"] for c in chunks)))
    )
    assert [r["transaction_id"] for r in scored] == [r["transaction_id"] for r in rows]
    assert scored[10]["error"] and scored[10]["fraud_probability"] == ""
    api = client.post("/v1/predict/batch", json={"transactions": good}).json()["results"]
    by_id = {a["transaction_id"]: a for a in api}
    for row in scored:
        if not row["error"]:
            expected = by_id[row["transaction_id"]]
            assert float(row["fraud_probability"]) == pytest.approx(
                expected["fraud_probability"], abs=5e-7
            )
            assert row["decision"] == expected["decision"]
    assert sum(done["decisions"].values()) == 60


def test_uploads_that_cannot_be_scored_get_a_clear_4xx(dash: Any, recent: pd.DataFrame) -> None:
    client = dash(max_body_bytes=4096)
    as_json = client.post("/dashboard/api/batch", json={"x": 1})
    assert as_json.status_code == 415 and "text/csv" in as_json.json()["detail"]
    csv_headers = {"Content-Type": "text/csv"}
    missing = client.post("/dashboard/api/batch", content=b"amount\n5\n", headers=csv_headers)
    assert missing.status_code == 422 and "missing required columns" in missing.json()["detail"]
    big = _csv([as_request(r) for r in recent.iloc[:60].itertuples()])
    assert len(big) > 4096
    too_big = client.post("/dashboard/api/batch", content=big, headers=csv_headers)
    assert too_big.status_code == 413
    # the CSV exception is for the upload route only
    assert client.post("/v1/predict", content=b"a,b\n", headers=csv_headers).status_code == 415


def test_the_model_page_shows_the_card_of_the_served_bundle(
    dash: Any, carded: tuple[Path, Path], tiny_bundle: Path
) -> None:
    _, card_dir = carded
    card = json.loads((card_dir / "card.json").read_text())
    page = dash().get("/dashboard/model").text
    assert card["bundle_version"] in page and "is serving" not in page
    assert f"{card['evaluation']['test']['auprc']:.3f}" in page
    assert card["training"]["data_version"] in page
    assert "How the model was chosen" in page
    for choice in ("imbalance", "monotone", "fusion", "calibration"):
        assert html.escape(card["selection"][choice]["why"]) in page
    for plot in card["plots"]:
        assert f'src="/dashboard/card/plots/{plot["id"]}"' in page
    assert "Open the full audit report" in page
    other = dash(bundle_uri=str(tiny_bundle)).get("/dashboard/model").text
    assert "is serving: its numbers are not this model" in other
    none = dash(model_card_dir=card_dir.parent / "nowhere").get("/dashboard/model").text
    assert "no model card at" in none and "Serving now" in none


def test_card_files_are_only_the_ones_it_lists(dash: Any, carded: tuple[Path, Path]) -> None:
    _, card_dir = carded
    client = dash()
    listed = json.loads((card_dir / "card.json").read_text())["plots"][0]["id"]
    plot = client.get(f"/dashboard/card/plots/{listed}")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content == (card_dir / "plots" / listed).read_bytes()
    for path in ("shap/not_listed.png", "../card.json", "..%2Fcard.json", "shap/../../card.json"):
        assert client.get(f"/dashboard/card/plots/{path}").status_code == 404, path
    report = client.get("/dashboard/card/report")
    assert report.status_code == 200 and report.headers["content-security-policy"] == REPORT_CSP
