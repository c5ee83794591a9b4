"""Tables of the system of record, in PostgreSQL's and SQLite's dialects.

``decisions`` and ``labels`` are keyed by transaction id: a row shipped twice (the
shipper is at-least-once) is a no-op. A label that differs from the one on record goes to
``label_conflicts`` (unique per id, label, source and receipt time, so re-shipping it does
not count it twice) and never overwrites the first. ``job_runs`` is where the pipeline
jobs record their outcome; the service turns the newest success per job into a metric.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["postgresql", "sqlite"]

_TIME = {"postgresql": "TIMESTAMPTZ", "sqlite": "TIMESTAMP"}
_SERIAL = {"postgresql": "BIGSERIAL PRIMARY KEY", "sqlite": "INTEGER PRIMARY KEY"}

_TEMPLATE = """
CREATE TABLE IF NOT EXISTS decisions (
    transaction_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    tx_time {time} NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    merchant_category TEXT,
    channel TEXT NOT NULL,
    entry_mode TEXT NOT NULL,
    is_foreign BOOLEAN NOT NULL,
    distance_from_home_km DOUBLE PRECISION NOT NULL,
    feature_service TEXT NOT NULL,
    model_version TEXT NOT NULL,
    fraud_probability DOUBLE PRECISION,
    risk_level TEXT NOT NULL,
    decision TEXT NOT NULL,
    decision_source TEXT NOT NULL,
    degraded TEXT NOT NULL,
    request_id TEXT NOT NULL,
    scored_at {time} NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_tx_time ON decisions (tx_time);
CREATE TABLE IF NOT EXISTS labels (
    transaction_id TEXT PRIMARY KEY,
    is_fraud BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    received_at {time} NOT NULL
);
CREATE TABLE IF NOT EXISTS label_conflicts (
    id {serial},
    transaction_id TEXT NOT NULL,
    is_fraud BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    received_at {time} NOT NULL,
    UNIQUE (transaction_id, is_fraud, source, received_at)
);
CREATE TABLE IF NOT EXISTS job_runs (
    id {serial},
    job TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at {time} NOT NULL,
    finished_at {time} NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job, finished_at);
"""


def schema(dialect: Dialect) -> list[str]:
    """The ``CREATE ... IF NOT EXISTS`` statements, one per element."""
    text = _TEMPLATE.format(time=_TIME[dialect], serial=_SERIAL[dialect])
    return [statement.strip() for statement in text.split(";") if statement.strip()]
