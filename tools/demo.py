"""The end of ``make demo``: start the service, score three example transactions, keep serving.

Run from the repository root as ``python -m tools.demo`` (``make demo``). The examples
come from the last day of the drifted period (``data/v1``), which is what the
online store holds: a known customer's ordinary purchase, the same card used for a
suspicious one (20 times the amount, far from home, foreign, online, manual entry), and a
customer the feature store has never seen. The service stays up until Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.transactions import request_body

ROOT = Path(__file__).resolve().parent.parent


def examples(data: Path) -> list[tuple[str, dict[str, Any]]]:
    """A normal, a suspicious and an unknown-customer transaction."""
    tx = pd.read_parquet(data / "v1" / "transactions.parquet")
    last_day = tx[(tx.timestamp >= tx.timestamp.max().normalize()) & (tx.is_fraud == 0)]
    row = last_day[last_day.channel == "in_person"].iloc[0]
    normal = request_body(
        row,
        transaction_id="demo-normal-1",
        amount=round(float(row.amount), 2),
        distance_from_home_km=round(float(row.distance_from_home_km), 1),
    )
    suspicious = normal | {
        "transaction_id": "demo-suspicious-1",
        "amount": round(float(row.amount) * 20, 2),
        "merchant_category": "electronics",
        "channel": "online",
        "entry_mode": "manual",
        "is_foreign": True,
        "distance_from_home_km": 1450.0,
    }
    unknown = normal | {"transaction_id": "demo-new-customer-1", "customer_id": "C-NEW-0001"}
    return [("normal", normal), ("suspicious", suspicious), ("unknown customer", unknown)]


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 # always http://HOST:PORT/...
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"demo: the service exited with code {server.returncode}")
        try:
            status, body = _request(f"{base}/readyz")
            if status == 200:
                return dict(body)
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"demo: the service was not ready within {timeout:.0f} s")


def show(name: str, body: dict[str, Any], answer: dict[str, Any]) -> None:
    print(f"\n  {name}: {body['amount']:,.2f} at {body['terminal_id']} ({body['channel']})")
    print(
        f"    -> {answer['decision'].upper()} ({answer['risk_level']}), "
        f"fraud probability {answer['fraud_probability']:.4f}, "
        f"ae {answer['ae_score']:.3f}, clf {answer['clf_score']:.3f}, "
        f"{answer['latency_ms']:.1f} ms server-side"
    )
    for reason in answer["reasons"][:4]:
        print(f"       {reason['code']:<34} {reason['source']:<11} {reason['contribution']:+.3f}")
    if answer["degraded"]:
        print(f"    degraded: {', '.join(answer['degraded'])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--no-wait", action="store_true", help="stop after the examples")
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    env = os.environ | {"HOST": args.host, "PORT": str(args.port), "WORKERS": "1"}
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)  # nosec B603 # fixed argv
    try:
        ready = wait_ready(base, server, timeout=90)
        print(f"\nService ready at {base} in {time.monotonic() - started:.1f} s: {ready['status']}")
        _, model = _request(f"{base}/v1/model")
        print(f"  model {model['version']} ({model['decision_source']})")
        print(f"  tiers {model['thresholds']}")
        for name, body in examples(args.data):
            status, answer = _request(f"{base}/v1/predict", body)
            if status != 200:
                raise SystemExit(f"demo: {name} got HTTP {status}: {answer}")
            show(name, body, answer)
        if args.no_wait:
            return
        print(
            f"\nThe service keeps running at {base} (dashboard: {base}/dashboard, "
            f"API docs: {base}/docs, metrics: {base}/metrics).\nPress Ctrl+C to stop it."
        )
        server.wait()
    except KeyboardInterrupt:
        print("\ndemo: stopping the service")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
