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

import fraud_rules
from app.services.api_keys import parse_keys

DEFAULT_RULES_FILE = Path(fraud_rules.__file__).parent / "default_rules.yaml"

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
    # Edge limits of the HTTP protocol (docs/reliability.md, "Edge"; app/server/)
    http_max_request_line_bytes: int = Field(
        default=8_192, ge=256, le=65_536, description="longer request lines get 414"
    )
    http_max_header_bytes: int = Field(
        default=32_768,
        ge=1_024,
        le=1_048_576,
        description="a request head (line and headers) larger than this gets 431, so one "
        "huge header cannot stall the event loop or take memory",
    )
    http_max_headers: int = Field(
        default=100, ge=8, le=1_000, description="more request headers than this get 431"
    )
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="a request head must arrive within this (from the connection's or the "
        "request's first byte), else 408 and close: slow or idle clients cannot hold sockets",
    )
    http_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="a request body must arrive within this after its head, else 408 and close",
    )
    http_max_connections: int = Field(
        default=4_096,
        ge=1,
        le=1_000_000,
        description="open connections per process; a new one past this gets a fast 503 and "
        "is closed, so file descriptors cannot run out (keep it below the fd limit)",
    )
    http_linger_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="after an early answer (413, a refusal) the rest of the request is read "
        "and discarded for up to this long before closing, so the client sees the answer, "
        "not a connection reset",
    )
    http_linger_bytes: int = Field(
        default=16_777_216, ge=0, description="the most a lingering close reads and discards"
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
    gil_switch_interval_ms: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="how long a thread may hold the GIL while another waits "
        "(sys.setswitchinterval; Python's default 5 ms): the background threads (velocity "
        "push, shadow scoring, audit, shipper) hold a request that long at most",
    )
    feature_batch_timeout_ms: float = Field(
        default=500.0,
        gt=0,
        le=10_000,
        description="online lookup budget of a batch (/v1/predict/batch): up to MAX_BATCH "
        "customers and terminals, about 10-70 ms for 1,000 (FEATURE_TIMEOUT_MS is a single's)",
    )
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
    # Velocity state and the server clock (docs/reliability.md, same title)
    velocity_max_future_skew_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="a transaction dated further ahead of the server clock is still scored, "
        "but enters the velocity state at the server's time: future-dated input cannot "
        "prune a card's real history",
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
    # Load shedding (docs/reliability.md, "Load shedding")
    admission_single_limit: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="single-transaction requests admitted at once (scoring or queued for it); "
        "more get a fast 503, so an overload cannot queue the admitted ones past the SLO",
    )
    admission_single_target_ms: float = Field(
        default=100.0,
        ge=0,
        le=60_000,
        description="latency target of admitted single requests (body received to answer): "
        "answers slower than this halve the number admitted at once, faster ones let it grow "
        "back to the limit; holds the admitted latency when the pod gets less CPU than the "
        "limit assumes (0: the fixed limit alone)",
    )
    admission_batch_limit: int = Field(
        default=2,
        ge=1,
        le=1_000,
        description="batch requests admitted at once; more get a fast 503, so batches cannot "
        "take the CPU or the places of single transactions",
    )
    admission_retry_after_seconds: int = Field(
        default=1, ge=1, le=3_600, description="Retry-After of a shed request's 503"
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

    # API documentation pages (app/api/routes/docs.py; SECURITY.md, "Limits")
    docs_enabled: bool = Field(
        default=True,
        description="serve Swagger UI (/docs) and ReDoc (/redoc) from files in the image, "
        "never a CDN (off: neither page; /openapi.json stays)",
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
    # Dashboard uploads and sessions (docs/reliability.md, "Dashboard uploads"/"sessions")
    dashboard_upload_max_rows: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="an uploaded CSV with more rows gets 413 as soon as its row past the limit "
        "is read: a file of tiny rows cannot take seconds of CPU and hundreds of MiB",
    )
    dashboard_sign_in_failures_burst: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="failed sign-ins one client address may make in a row before 429; per "
        "address, so a flood from one cannot lock operators elsewhere out",
    )
    dashboard_sign_in_failures_per_second: float = Field(
        default=2.0, gt=0, le=1_000, description="then this many a second (key guessing)"
    )
    dashboard_sign_in_addresses_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="client addresses the failed-sign-in throttle remembers (memory bound)",
    )
    dashboard_sign_ins_per_key_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="sessions one key may open per minute and pod (a leaked key cannot mint "
        "sessions without end)",
    )
    dashboard_revoked_sessions_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="signed-out sessions a pod remembers until they expire (memory bound; "
        "past it, signing out ends every session of that key on the pod)",
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
    # The shared system of record (system_of_record/, app/services/record_shipper.py)
    record_url: str | None = Field(
        default=None,
        description="where decisions and labels are shipped: postgresql://user@host:port/db "
        "(Cloud SQL through its Auth Proxy on GKE) or sqlite:///path; default: the embedded "
        "record.sqlite beside the audit log",
    )
    record_password_file: Path | None = Field(
        default=None, description="a mounted secret holding the database password"
    )
    record_spool_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="decisions that may wait in the local spool while the database is away; "
        "past it scores are refused (503) and /readyz fails, so nothing acknowledged is lost",
    )
    record_ship_batch: int = Field(
        default=1_000, ge=1, le=100_000, description="rows per write to the system of record"
    )
    record_ship_interval_ms: float = Field(
        default=200.0, gt=0, le=60_000, description="the shipper looks for new rows this often"
    )
    record_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    record_jobs_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3_600,
        description="how often the pipeline jobs' last successes are read for /metrics",
    )
    record_drain_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="at shutdown, how long the spool may take to drain into the database",
    )
    # Fraud operations (docs/fraud-operations.md): the rule set, the challenger in shadow,
    # the review queue.
    rules_file: Path = Field(
        default=DEFAULT_RULES_FILE,
        description="the rule set (YAML or JSON); on GKE the mounted fraud-rules ConfigMap",
    )
    rules_refresh_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3_600,
        description="how often the rule file is checked for a change (0: read at start-up only)",
    )
    rule_lists_refresh_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description="how often the rule lists are read from the system of record",
    )
    rules_dry_run_max_rows: int = Field(
        default=200_000, ge=1, le=5_000_000, description="the most rows one dry-run reads"
    )
    challenger_uri: str | None = Field(
        default=None,
        description="a second bundle scored in shadow on every answered transaction (a "
        "directory or models:/NAME@challenger); its decisions are recorded, never answered",
    )
    shadow_max_queued_rows: int = Field(
        default=4_096,
        ge=1,
        le=1_000_000,
        description="transactions waiting for the shadow scorer; beyond, they are dropped "
        "(fraud_shadow_dropped_total{reason='full'})",
    )
    shadow_linger_ms: float = Field(
        default=100.0,
        ge=0,
        le=10_000,
        description="the shadow scorer waits this long for a group to gather before scoring "
        "it (one call per group, not per request: the champion keeps the core)",
    )
    shadow_busy_inflight: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="with this many scoring requests in flight or more, shadow scoring is "
        "skipped (reason 'busy'); 0: only the queue bound sheds",
    )
    review_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="share of non-review decisions also put in the review queue (a control "
        "sample for analysts), chosen by transaction id",
    )
    review_claim_lease_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86_400,
        description="a claim on a review item lapses after this long; another analyst may take it",
    )
    # Files that disappear, and readiness from the logs (docs/reliability.md, "Limits").
    file_check_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3_600,
        description="how often an idle audit or label log is checked: a deleted or replaced "
        "file is reopened (every write also checks) and a probe write proves it writable "
        "for /readyz (0: writes only)",
    )
    log_health_consecutive: int = Field(
        default=3,
        ge=1,
        le=100,
        description="write outcomes in a row (requests' or probes') needed to turn a log's "
        "/readyz component failing or writable again, so a pod does not flap",
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
    # The sampler is built here, not by the SDK: the two standard sampler variables are
    # read by Settings (the only sampler this service builds, so another is refused).
    otel_traces_sampler: Literal["parentbased_traceidratio"] = Field(
        default="parentbased_traceidratio",
        description="a caller's sampled flag is followed; new traces are kept at the ratio",
    )
    otel_traces_sampler_arg: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="share of new traces kept (0: none, 1: all); k8s/base sets 0.1",
    )
    otel_excluded_urls: str = Field(
        default=r"/healthz$,/readyz$,/metrics$,/dashboard/api/live$,/dashboard/static/,"
        r"/docs/static/",
        description="comma-separated regular expressions searched in a request's URL: "
        "matching requests get no span (probes, scrapes, static assets, polling)",
    )

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Every accepted API key (environment and secret file together)."""
        keys: list[str] = []
        if self.api_keys is not None:
            keys += self.api_keys.get_secret_value().split(",")
        keys = [k.strip() for k in keys if k.strip()]
        if self.api_keys_file is not None and self.api_keys_file.is_file():
            keys += parse_keys(self.api_keys_file.read_text())  # as ApiKeys reads it
        return tuple(keys)

    @cached_property
    def hash_key(self) -> bytes:
        """The HMAC key for pseudonymising customer ids: the secret file's, else PII_HASH_KEY."""
        if self.pii_hash_key_file is not None and self.pii_hash_key_file.is_file():
            from_file = self.pii_hash_key_file.read_text().strip()
            if from_file:
                return from_file.encode()
        return self.pii_hash_key.get_secret_value().encode()

    @property
    def record_target(self) -> str:
        """The system of record's URL (the embedded default when none is set)."""
        return self.record_url or f"sqlite:///{self.audit_log.parent / 'record.sqlite'}"

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
            if not self.record_target.startswith(("postgresql://", "postgres://")):
                raise ValueError(
                    f"the {self.environment} environment needs a shared system of record: "
                    "RECORD_URL=postgresql://..."
                )
        return self
