"""The service's settings: one pydantic-settings object, read once at start-up.

No other module reads the environment. Values come from environment variables (names
below, case-insensitive) or their defaults. API keys and the PII hash key may also come
from mounted secret files, so Kubernetes Secrets reach the pod as files, not variables.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["local", "gke"]


class Settings(BaseSettings):
    """Every setting of the scoring service."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    keep_alive_seconds: int = Field(
        default=620,
        gt=0,
        le=3_600,
        description="idle keep-alive connections are closed after this long; above the "
        "600 s of Google Cloud load balancers, so a balancer never reuses a connection the "
        "pod is closing (uvicorn's own default, 5 s, races with every long-lived client)",
    )
    debug: bool = False

    bundle_uri: str = Field(
        default="models/bundle",
        description="a bundle directory, or an MLflow URI such as models:/fraud-ensemble@champion",
    )
    mlflow_tracking_uri: str | None = Field(default=None, description="for models:/ bundle URIs")
    feature_repo: Path = Path("feature_repo")
    feature_store_yaml: str = "feature_store.yaml"
    feature_service: str = "fraud_detection_v2"
    feature_timeout_ms: float = Field(default=50.0, gt=0, le=10_000)
    feature_store_socket_timeout_ms: float = Field(
        default=20.0,
        gt=0,
        le=10_000,
        description="Redis connect and read timeout of the service's own client (added to "
        "the connection string when it sets none), so a call fails inside the lookup budget",
    )
    feature_store_check_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3_600,
        description="how often the online store's load record and canaries are checked for "
        "/readyz (0: at start-up only)",
    )
    feature_store_check_timeout_ms: float = Field(
        default=2_000.0, gt=0, le=60_000, description="a check without an answer by then fails"
    )
    feature_store_check_consecutive: int = Field(
        default=3,
        ge=1,
        le=100,
        description="results in a row needed to change the online store's status (hysteresis)",
    )
    feature_lookup_abandon_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3_600,
        description="a lookup running longer than this has its thread abandoned and replaced",
    )
    feature_lookup_max_abandoned: int = Field(
        default=4,
        ge=0,
        le=64,
        description="abandoned lookup threads that may still be stuck before replacing stops",
    )
    scoring_stuck_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3_600,
        description="/healthz answers 503 (the kubelet restarts the container) once the "
        "oldest unfinished lookup is older than this (0: never)",
    )
    coalesce_max: int = Field(
        default=64,
        ge=1,
        le=1_000,
        description="single requests queued together are scored as one group of at most this "
        "many (1: never)",
    )
    velocity_push: bool = Field(
        default=True,
        description="keep customers' velocity state current by pushing scored transactions "
        "(off: a stream consumer is the writer; docs/velocity.md)",
    )
    velocity_flush_ms: float = Field(
        default=20.0, gt=0, le=10_000, description="the pusher writes at least this often"
    )
    velocity_max_pending: int = Field(
        default=100_000,
        ge=1,
        description="transactions waiting to be pushed beyond which new ones are dropped",
    )
    feature_reader: Literal["auto", "feast"] = Field(
        default="auto",
        description="auto: read a SQLite online store in bulk (same values); feast: Feast's read",
    )
    reasons_top_k: int = Field(default=3, ge=0, le=20)
    reason_method: Literal["path", "treeshap"] = Field(
        default="path",
        description="classifier reason codes: path attribution (us) or exact TreeSHAP (~1 ms)",
    )
    strict_readiness: bool = Field(
        default=False,
        description="/readyz answers 503 while scoring with rules (the model fallback)",
    )

    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    max_batch: int = Field(
        default=1_000, ge=1, le=1_000, description="may only lower the 1,000 cap"
    )

    api_keys: SecretStr | None = Field(default=None, description="comma-separated API keys")
    api_keys_file: Path | None = Field(
        default=None,
        description="a mounted secret: one key per line, re-read when it changes (rotation)",
    )
    api_keys_refresh_seconds: float = Field(
        default=10.0, ge=0, le=3_600, description="how often the key file's mtime is checked"
    )
    rate_limit_per_second: float = Field(
        default=0.0, ge=0, description="requests per second per API key and pod (0: no limit)"
    )
    rate_limit_burst: int = Field(
        default=0, ge=0, description="bucket size (0: one second's worth of the rate)"
    )

    dashboard_enabled: bool = Field(
        default=True,
        description="serve the operator dashboard under /dashboard (behind the API keys "
        "when there are any; docs/dashboard.md)",
    )
    dashboard_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 7, description="how long a dashboard sign-in lasts"
    )
    model_card_dir: Path = Field(
        default=Path("models/card"),
        description="the model card the dashboard shows (`dvc repro model_card`)",
    )

    label_log: Path = Path("var/labels.sqlite")
    audit_log: Path = Field(
        default=Path("var/predictions.sqlite"),
        description="prediction audit log (SQLite, WAL): every answered score is on disk first",
    )
    audit_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL: fsync per commit (survives power loss); NORMAL: survives a "
        "process crash, not an OS crash",
    )
    audit_retention_hours: float = Field(
        default=168.0, gt=0, description="audit rows older than this are pruned"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    pii_hash_key: SecretStr = Field(
        default=SecretStr("local-demo-only"), description="HMAC key for customer ids in logs"
    )
    pii_hash_key_file: Path | None = Field(
        default=None, description="a mounted secret holding the HMAC key (wins over PII_HASH_KEY)"
    )

    # OpenTelemetry: the standard variable names; the OTLP exporter reads its endpoint,
    # headers and timeout from the other OTEL_EXPORTER_OTLP_* variables itself.
    otel_traces_exporter: Literal["none", "console", "otlp"] = "none"
    otel_service_name: str = "fraud-scoring"

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Every accepted API key (environment and secret file together)."""
        keys: list[str] = []
        if self.api_keys is not None:
            keys += self.api_keys.get_secret_value().split(",")
        if self.api_keys_file is not None and self.api_keys_file.is_file():
            keys += self.api_keys_file.read_text().splitlines()
        return tuple(k.strip() for k in keys if k.strip())

    @cached_property
    def hash_key(self) -> bytes:
        """The HMAC key for pseudonymising customer ids: the secret file's, else PII_HASH_KEY."""
        if self.pii_hash_key_file is not None and self.pii_hash_key_file.is_file():
            from_file = self.pii_hash_key_file.read_text().strip()
            if from_file:
                return from_file.encode()
        return self.pii_hash_key.get_secret_value().encode()

    @model_validator(mode="after")
    def _safe_outside_local(self) -> Settings:
        if self.environment != "local":
            if self.debug:
                raise ValueError(f"debug must be off in the {self.environment} environment")
            if self.hash_key == b"local-demo-only":
                raise ValueError(
                    f"the {self.environment} environment needs PII_HASH_KEY or PII_HASH_KEY_FILE"
                )
            if not self.keys:
                raise ValueError(
                    f"the {self.environment} environment needs API keys (API_KEYS or API_KEYS_FILE)"
                )
        return self
