"""Tables of the system of record, in PostgreSQL's and SQLite's dialects.

``decisions`` and ``labels`` are keyed by transaction id: a row shipped twice (the
shipper is at-least-once) is a no-op. A label that differs from the one on record goes to
``label_conflicts`` (unique per id, label, source and receipt time, so re-shipping it does
not count it twice) and never overwrites the first. ``job_runs`` is where the pipeline
jobs record their outcome; the service turns the newest success per job into a metric.

Issue 27 adds to ``decisions`` the model's own decision, the reasons, the rule set and
the matched rules, and the feature values (for dry-runs of rule sets over recorded
traffic); a database created before gets these columns at connect (:func:`prepare`).
``review_queue`` holds the transactions sent to analysts, ``rule_list_entries`` and
``rule_list_changes`` the rule lists editable without a deploy, ``shadow_scores`` the
challenger model's scores.
"""

from __future__ import annotations

from typing import Any, Literal

Dialect = Literal["postgresql", "sqlite"]

_TIME = {"postgresql": "TIMESTAMPTZ", "sqlite": "TIMESTAMP"}
_SERIAL = {"postgresql": "BIGSERIAL PRIMARY KEY", "sqlite": "INTEGER PRIMARY KEY"}
_BYTES = {"postgresql": "BYTEA", "sqlite": "BLOB"}

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
    scored_at {time} NOT NULL,
    model_decision TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '',
    rule_set TEXT NOT NULL DEFAULT '',
    rules TEXT NOT NULL DEFAULT '',
    features {bytes}
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
CREATE TABLE IF NOT EXISTS review_queue (
    transaction_id TEXT PRIMARY KEY,
    why TEXT NOT NULL,
    enqueued_at {time} NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    claimed_by TEXT,
    claimed_at {time},
    outcome TEXT,
    decided_by TEXT,
    decided_at {time},
    note TEXT,
    CHECK (status IN ('open', 'claimed', 'resolved')),
    CHECK (outcome IS NULL OR outcome IN ('fraud', 'legitimate', 'unsure'))
);
CREATE INDEX IF NOT EXISTS review_queue_status ON review_queue (status, enqueued_at);
CREATE TABLE IF NOT EXISTS rule_list_entries (
    list_name TEXT NOT NULL,
    value TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at {time} NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (list_name, value)
);
CREATE TABLE IF NOT EXISTS rule_list_changes (
    id {serial},
    list_name TEXT NOT NULL,
    value TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    changed_by TEXT NOT NULL,
    changed_at {time} NOT NULL
);
CREATE TABLE IF NOT EXISTS shadow_scores (
    transaction_id TEXT NOT NULL,
    challenger_version TEXT NOT NULL,
    champion_version TEXT NOT NULL,
    fraud_probability DOUBLE PRECISION NOT NULL,
    risk_level TEXT NOT NULL,
    decision TEXT NOT NULL,
    scored_at {time} NOT NULL,
    PRIMARY KEY (transaction_id, challenger_version)
);
CREATE INDEX IF NOT EXISTS shadow_scores_scored_at ON shadow_scores (scored_at);
"""

# Columns added to ``decisions`` after databases were created without them, in order.
# Literal statements per dialect (SQLite has no ADD COLUMN IF NOT EXISTS: the columns on
# record are read first, on both engines, so a connect to an up-to-date database takes
# no lock on the table).
_ADDED_DECISION_COLUMNS: dict[Dialect, tuple[tuple[str, str], ...]] = {
    "postgresql": (
        ("model_decision", "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS model_decision "
         "TEXT NOT NULL DEFAULT ''"),
        ("reasons", "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS reasons "
         "TEXT NOT NULL DEFAULT ''"),
        ("rule_set", "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS rule_set "
         "TEXT NOT NULL DEFAULT ''"),
        ("rules", "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS rules "
         "TEXT NOT NULL DEFAULT ''"),
        ("features", "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS features BYTEA"),
    ),
    "sqlite": (
        ("model_decision", "ALTER TABLE decisions ADD COLUMN model_decision "
         "TEXT NOT NULL DEFAULT ''"),
        ("reasons", "ALTER TABLE decisions ADD COLUMN reasons TEXT NOT NULL DEFAULT ''"),
        ("rule_set", "ALTER TABLE decisions ADD COLUMN rule_set TEXT NOT NULL DEFAULT ''"),
        ("rules", "ALTER TABLE decisions ADD COLUMN rules TEXT NOT NULL DEFAULT ''"),
        ("features", "ALTER TABLE decisions ADD COLUMN features BLOB"),
    ),
}  # fmt: skip
_DECISION_COLUMNS_ON_RECORD = {
    "postgresql": "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'decisions'",
    "sqlite": "SELECT name FROM pragma_table_info('decisions')",
}


def schema(dialect: Dialect) -> list[str]:
    """The ``CREATE ... IF NOT EXISTS`` statements, one per element."""
    text = _TEMPLATE.format(time=_TIME[dialect], serial=_SERIAL[dialect], bytes=_BYTES[dialect])
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def prepare(cursor: Any, dialect: Dialect) -> list[str]:
    """Create what is missing and add the newer ``decisions`` columns to a database made
    before them (idempotent); returns the columns added."""
    for statement in schema(dialect):
        cursor.execute(statement)
    cursor.execute(_DECISION_COLUMNS_ON_RECORD[dialect])
    present = {name for (name,) in cursor.fetchall()}
    added = []
    for column, statement in _ADDED_DECISION_COLUMNS[dialect]:
        if column not in present:
            cursor.execute(statement)
            added.append(column)
    return added
