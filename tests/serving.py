"""Serving fixtures (a pytest plugin loaded by tests/conftest.py): the real app over the
tiny Feast repo and a tiny trained bundle (and its model card). ``as_request`` and
``as_csv_row`` are the one row → request builder of :mod:`benchmarks.transactions`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.core.config import Settings
from app.main import create_app
from benchmarks.transactions import csv_row as as_csv_row
from benchmarks.transactions import request_body as as_request
from fraud_model.bundle import load_bundle, write_bundle
from tests.card_inputs import bundle_spec, write_inputs
from training import model_card

__all__ = ["as_csv_row", "as_request"]


@pytest.fixture(scope="session")
def tiny_bundle(tiny_trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result, _, _ = tiny_trained
    directory = tmp_path_factory.mktemp("served") / "bundle"
    write_bundle(result.bundle, directory)
    return directory


@pytest.fixture(scope="session")
def carded(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, card): the tiny bundle with the training record ``train`` writes, and its
    model card, built by the real ``model_card`` stage from miniature metrics and plots."""
    root = tmp_path_factory.mktemp("card")
    bundle = load_bundle(tiny_bundle)
    metadata = {**bundle_spec()["metadata"], **bundle.metadata}
    directory = root / "bundle"
    write_bundle(dataclasses.replace(bundle, metadata=metadata), directory)
    write_inputs(root, model_card.bundle_version(directory))
    card = root / "card"
    model_card.main(
        [
            *("--metrics-dir", str(root / "metrics")),
            *("--bundle", str(directory)),
            *("--reports-dir", str(root / "reports")),
            *("--out", str(card)),
        ]
    )
    return directory, card


@pytest.fixture(scope="session")
def recent(tiny_data: Path) -> pd.DataFrame:
    """The last day of the tiny v1 stream: inside the online snapshots' TTL."""
    tx = pd.read_parquet(tiny_data / "v1" / "transactions.parquet")
    return tx[tx.timestamp >= tx.timestamp.max().normalize()].reset_index(drop=True)


@pytest.fixture
def settings_for(tiny_bundle: Path, feast_repo: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings of a test app; keyword arguments override any field."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bundle_uri": str(tiny_bundle),
            "feature_repo": feast_repo,
            "label_log": tmp_path / "labels.sqlite",
            "audit_log": tmp_path / "predictions.sqlite",
            "log_level": "WARNING",
            # The session's Feast repo is shared: tests that push velocity state use a copy.
            "velocity_push": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def client_for(
    settings_for: Callable[..., Settings], spans: InMemorySpanExporter
) -> Iterator[Callable[..., TestClient]]:
    """Start the real app (lifespan included) with overridden settings."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        app = create_app(settings_for(**overrides), span_processor=SimpleSpanProcessor(spans))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for()
