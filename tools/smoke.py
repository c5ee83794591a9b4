#!/usr/bin/env python3
"""Smoke test of a deployed scoring service that fails on degraded answers.

Waits (bounded) for ``/readyz`` 200, asks ``GET /v1/features/status`` which customer and
terminal the online store holds (the load record's canaries) and up to when its data is
current, scores one ordinary purchase of that customer at that terminal just before then,
and exits non-zero when the answer is not a full model answer: any ``degraded`` entry
(``customer_features:stale``, ``feature_store:error``, ...), a rules fallback, or any
HTTP or shape problem. Only an answer whose lookup missed its time budget
(``feature_store:timeout`` alone, as a pod's first connection to the store may) is scored
again, at most three times in all. Standard library only, so CI runners and release jobs run it with
their own ``python3``. Used by ``make e2e``, ci.yml's docker job and deploy.yml.

    python3 tools/smoke.py --url http://127.0.0.1:8000
    python3 tools/smoke.py --url https://fraud.example.com --api-key-env FRAUD_API_KEY
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TIMEOUT = "feature_store:timeout"


class SmokeFailure(Exception):
    """The service is not answering as a healthy deployment must."""


def call(
    url: str,
    key: str | None,
    body: dict[str, Any] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One JSON request; (status, decoded body or text)."""
    headers = {"Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # nosec B310 # noqa: S310
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_ready(base: str, timeout: float, context: ssl.SSLContext | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = call(f"{base}/readyz", None, context=context, timeout=5)
            if status == 200:
                return dict(body)
            last = f"{status} {body}"
        except (urllib.error.URLError, OSError) as error:
            last = repr(error)
        time.sleep(1)
    raise SmokeFailure(f"/readyz not 200 within {timeout:.0f} s: {last}")


def known_transaction(status: dict[str, Any]) -> dict[str, Any]:
    """An ordinary purchase of the store's canary customer at its canary terminal, an
    hour before the time the store's data is current to."""
    load = status.get("record")
    if not load:
        raise SmokeFailure(f"the online store holds no load record: {status}")
    views = load["views"]
    customer = views.get("customer_features", {}).get("canary")
    terminal = views.get("terminal_features", {}).get("canary")
    if not customer or not terminal:
        raise SmokeFailure(f"the load record names no known customer and terminal: {load}")
    at = datetime.fromisoformat(load["end"].replace("Z", "+00:00")) - timedelta(hours=1)
    return {
        "transaction_id": f"smoke-{int(time.time() * 1000)}",
        "customer_id": customer,
        "terminal_id": terminal,
        "timestamp": at.isoformat(),
        "amount": 42.5,
        "merchant_category": "grocery",
        "channel": "in_person",
        "entry_mode": "chip",
        "is_foreign": False,
        "distance_from_home_km": 3.0,
    }


def problems(answer: dict[str, Any]) -> list[str]:
    """What makes an answer less than a full model answer."""
    found = []
    if answer.get("degraded"):
        found.append(f"degraded: {answer['degraded']}")
    # "rule": the model scored it and a rule of the rule set decided (still a full answer).
    if answer.get("decision_source") not in ("model", "rule") or answer.get("clf_score") is None:
        found.append(f"decision_source is {answer.get('decision_source')!r}, not the model's")
    for name in ("fraud_probability", "risk_level", "decision", "model_version"):
        if answer.get(name) is None:
            found.append(f"no {name}")
    return found


def smoke(
    base: str, key: str | None, ready_timeout: float, insecure: bool = False, attempts: int = 3
) -> dict[str, Any]:
    """Run the checks; the prediction when all pass, else :class:`SmokeFailure`."""
    context = ssl._create_unverified_context() if insecure else None  # nosec B323 # noqa: S323
    ready = wait_ready(base, ready_timeout, context)
    if ready.get("status") != "ready":
        raise SmokeFailure(f"/readyz is 200 but says {ready}")
    status_code, status = call(f"{base}/v1/features/status", key, context=context)
    if status_code != 200:
        raise SmokeFailure(f"GET /v1/features/status: {status_code} {status}")
    for attempt in range(1, attempts + 1):
        transaction = known_transaction(status)
        code, answer = call(f"{base}/v1/predict", key, transaction, context=context)
        if code != 200:
            raise SmokeFailure(f"POST /v1/predict: {code} {answer}")
        found = problems(answer)
        if not found:
            return dict(answer)
        # A lookup that missed its time budget once (a pod's first connection to the store)
        # is worth another try; any other degradation fails at once.
        if answer.get("degraded") != [TIMEOUT] or attempt == attempts:
            break
        print(f"smoke: attempt {attempt}: {TIMEOUT}, scoring again", file=sys.stderr)
    raise SmokeFailure(f"known customer {transaction['customer_id']}: " + "; ".join(found))


def api_key(args: argparse.Namespace) -> str | None:
    if args.api_key_file:
        return Path(args.api_key_file).read_text().splitlines()[0].strip()
    if args.api_key_env:
        return os.environ.get(args.api_key_env) or None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the service's base URL")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key-file", help="a file whose first line is an API key")
    keys.add_argument("--api-key-env", help="an environment variable holding an API key")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
    args = parser.parse_args(argv)
    try:
        answer = smoke(args.url.rstrip("/"), api_key(args), args.ready_timeout, args.insecure)
    except (SmokeFailure, urllib.error.URLError, OSError, KeyError, ValueError) as error:
        print(f"smoke: FAILED: {error}", file=sys.stderr)
        return 1
    summary = {
        k: answer[k] for k in ("fraud_probability", "risk_level", "decision", "model_version")
    }
    print(f"smoke: ok {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
