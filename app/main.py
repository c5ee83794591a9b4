"""The FastAPI application: ``create_app()`` builds it, the lifespan loads the heavy parts.

Run it with ``python -m app`` (or ``uvicorn app.main:create_app --factory``). Settings are
read once here; the model bundle and the Feast ``FeatureStore`` are loaded once, in the
lifespan, and kept on ``app.state.runtime``.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from opentelemetry.sdk.trace import SpanProcessor

from app import __version__
from app.api.admission import AdmissionMiddleware
from app.api.deps import Runtime, require_api_key
from app.api.errors import install_error_handlers
from app.api.middleware import RequestMiddleware
from app.api.routes import docs, features, feedback, health, model, predict, review, rules, shadow
from app.core.config import Settings
from app.core.logging import configure_logging
from app.core.telemetry import (
    GroupSpan,
    Span,
    group_span_factory,
    instrument,
    span_factory,
    tracer_provider,
)
from app.dashboard import routes as dashboard
from app.dashboard.state import load_dashboard
from app.dashboard.upload import CSV_UPLOAD_PATH
from app.services.api_keys import ApiKeys
from app.services.dependency_health import FileWatch
from app.services.feature_health import FeatureStoreHealth
from app.services.features import FeatureStoreError, OnlineFeatures
from app.services.label_log import LabelLog
from app.services.live import LiveWindow
from app.services.loading import Scoring, feature_names, load_scoring
from app.services.metrics import ServiceMetrics
from app.services.model_loader import LoadedModel
from app.services.prediction_log import PredictionLog
from app.services.rate_limit import RateLimiter
from app.services.record_desk import RecordDesk
from app.services.record_rows import shadow_record
from app.services.record_shipper import RecordShipper
from app.services.shadow import ShadowScorer, load_challenger
from app.services.shadow_log import ShadowLog
from system_of_record.store import open_store

log = logging.getLogger(__name__)


def api_keys(settings: Settings) -> ApiKeys:
    """The keys from ``API_KEYS`` (fixed) and ``API_KEYS_FILE`` (re-read on change)."""
    fixed = settings.api_keys.get_secret_value().split(",") if settings.api_keys else []
    return ApiKeys(fixed, settings.api_keys_file, settings.api_keys_refresh_seconds)


def feature_health(
    settings: Settings, features: OnlineFeatures | None, metrics: ServiceMetrics
) -> tuple[FeatureStoreHealth | None, str | None]:
    """The online store's checker, after its start-up check; or why there is none."""
    if features is None:
        metrics.set_feature_status("unavailable")
        return None, None
    try:
        health = FeatureStoreHealth(
            features,
            interval_s=settings.feature_store_check_seconds,
            timeout_s=settings.feature_store_check_timeout_ms / 1000,
            consecutive=settings.feature_store_check_consecutive,
            metrics=metrics,
        )
    except FeatureStoreError as exc:
        log.error("online store cannot be checked", extra={"fields": {"why": str(exc)}})
        metrics.set_feature_status("unavailable")
        return None, str(exc)
    state = health.check()
    log.info(
        "online store checked",
        extra={"fields": {"status": state.status, "detail": state.last.detail}},
    )
    return health, None


def shadow_scoring(
    settings: Settings, scoring: Scoring, metrics: ServiceMetrics
) -> tuple[LoadedModel | None, ShadowLog | None]:
    """The challenger named by ``CHALLENGER_URI``, scoring in shadow when it loads (a
    challenger that does not load is reported, and the pod scores on without it)."""
    if settings.challenger_uri is None:
        metrics.shadow_loaded.set(0)
        return None, None
    features = scoring.features
    challenger = load_challenger(
        settings.challenger_uri,
        settings.mlflow_tracking_uri,
        feature_names(features, scoring.model),
        features.service_name if features is not None else "the FeatureService",
    )
    if challenger.bundle is None:
        log.error("challenger not loaded", extra={"fields": {"why": challenger.problem}})
        metrics.shadow_loaded.set(0)
        return challenger, None
    shadow_log = ShadowLog(settings.audit_log.parent / "shadow.sqlite")
    service = scoring.service
    limit = settings.shadow_busy_inflight
    scoring.service.shadow = ShadowScorer(
        challenger.bundle,
        lambda results: shadow_log.append([shadow_record(r) for r in results]),
        settings.shadow_max_queued_rows,
        (lambda: service.pending() >= limit) if limit > 0 else (lambda: False),
        metrics,
        linger_s=settings.shadow_linger_ms / 1000,
    )
    metrics.shadow_loaded.set(1)
    log.info("challenger in shadow", extra={"fields": {"version": challenger.bundle.version}})
    return challenger, shadow_log


def load_runtime(
    settings: Settings, metrics: ServiceMetrics, span: Span, group_span: GroupSpan | None = None
) -> Runtime:
    """Load the bundle and the feature store once; anything missing degrades, not fails."""
    began = time.perf_counter()
    scoring = load_scoring(settings, span, metrics, push_velocity=True, group_span=group_span)
    metrics.model_loaded.set(1 if scoring.model.bundle is not None else 0)
    health, unchecked = feature_health(settings, scoring.features, metrics)
    consecutive, every = settings.log_health_consecutive, settings.file_check_seconds
    labels = LabelLog(settings.label_log, consecutive, every)
    audit = PredictionLog(
        settings.audit_log,
        settings.audit_synchronous,
        settings.audit_retention_hours,
        consecutive,
        every,
        settings.record_spool_max_rows,
    )
    store = open_store(
        settings.record_target,
        settings.record_password_file,
        settings.record_connect_timeout_seconds,
    )
    challenger, shadow_log = shadow_scoring(settings, scoring, metrics)
    shipper = RecordShipper(
        store,
        audit,
        labels,
        metrics,
        settings.record_ship_batch,
        settings.record_ship_interval_ms / 1000,
        settings.record_jobs_refresh_seconds,
        review_sample_rate=settings.review_sample_rate,
        shadow=shadow_log,
        rulebook=scoring.rulebook,
        lists_refresh_s=settings.rule_lists_refresh_seconds,
    )
    log.info("system of record", extra={"fields": {"target": store.target.describe()}})
    runtime = Runtime(
        settings=settings,
        model=scoring.model,
        features=scoring.features,
        feature_problem=scoring.feature_problem or unchecked,
        feature_health=health,
        service=scoring.service,
        labels=labels,
        audit=audit,
        record=shipper,
        file_watch=FileWatch([audit.check, labels.check], settings.file_check_seconds),
        keys=api_keys(settings),
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        metrics=metrics,
        rulebook=scoring.rulebook,
        desk=RecordDesk(
            settings.record_target,
            settings.record_password_file,
            settings.record_connect_timeout_seconds,
        ),
        challenger=challenger,
        shadow=scoring.service.shadow,
        rules_watch=FileWatch([scoring.rulebook.refresh], settings.rules_refresh_seconds),
    )
    predictor = scoring.service.predictor
    log.info(
        "ready",
        extra={
            "fields": {
                "model_version": predictor.version,
                "decision_source": predictor.source,
                "feature_service": scoring.features.service_name if scoring.features else None,
                "load_seconds": round(time.perf_counter() - began, 3),
            }
        },
    )
    return runtime


def create_app(
    settings: Settings | None = None, span_processor: SpanProcessor | None = None
) -> FastAPI:
    """Build the app; ``span_processor`` lets tests capture spans in memory."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    if settings.api_keys is None and settings.api_keys_file is None:
        log.warning("no API keys configured: /v1 is open (local environment only)")
    elif not settings.keys:  # a key file absent (yet) or of comments only: every call gets 401
        log.warning("API key file has no keys yet: /v1 answers 401 until it has")
    metrics = ServiceMetrics(LiveWindow() if settings.dashboard_enabled else None)
    provider = tracer_provider(
        settings.otel_service_name,
        settings.otel_traces_exporter,
        settings.otel_traces_sampler_arg,
        span_processor,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await run_in_threadpool(load_runtime, settings, metrics, span, group_span)
        if settings.dashboard_enabled:
            app.state.dashboard = await run_in_threadpool(load_dashboard, settings.model_card_dir)
        app.state.runtime = runtime
        if runtime.feature_health is not None:
            runtime.feature_health.start()
        if runtime.file_watch is not None:
            runtime.file_watch.start()
        if runtime.rules_watch is not None:
            runtime.rules_watch.start()
        runtime.record.start()
        # Everything loaded so far lives as long as the process: move it out of the
        # collector's reach, so full collections only walk per-request garbage
        # (they otherwise cost a fraction of a millisecond every few hundred requests).
        # `python -m app` starts with the collector off (see app/__main__.py).
        gc.collect()
        gc.freeze()
        gc.enable()
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        try:
            yield
        finally:
            runtime.accepting = False
            if runtime.feature_health is not None:
                runtime.feature_health.close()
            if runtime.file_watch is not None:
                runtime.file_watch.close()
            if runtime.rules_watch is not None:
                runtime.rules_watch.close()
            runtime.service.close()  # the shadow scorer drains first
            left = await run_in_threadpool(runtime.record.drain, settings.record_drain_seconds)
            if left:
                log.warning("shutdown: rows left in the spool", extra={"fields": {"rows": left}})
            runtime.desk.close()
            runtime.labels.close()
            runtime.audit.close()
            if runtime.record.shadow is not None:
                runtime.record.shadow.close()
            provider.shutdown()

    app = FastAPI(
        title="Fraud scoring API",
        version=__version__,
        summary="Real-time card-fraud scores from a Feast-fed autoencoder + LightGBM ensemble.",
        lifespan=lifespan,
        debug=settings.debug,
        docs_url=None,  # served from the image instead of a CDN (app/api/routes/docs.py)
        redoc_url=None,
    )
    install_error_handlers(app)
    tracer = provider.get_tracer("app.scoring")
    app.add_middleware(  # inside RequestMiddleware: sheds get ids, metrics, a log line
        AdmissionMiddleware,
        single_limit=settings.admission_single_limit,
        batch_limit=settings.admission_batch_limit,
        retry_after_s=settings.admission_retry_after_seconds,
        metrics=metrics,
        single_target_s=settings.admission_single_target_ms / 1000 or None,
    )
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        csv_paths=frozenset({CSV_UPLOAD_PATH}) if settings.dashboard_enabled else frozenset(),
    )
    secured = [Depends(require_api_key)]
    app.include_router(health.router)
    for router in (
        predict.router,
        feedback.router,
        model.router,
        features.router,
        rules.router,
        review.router,
        shadow.router,
    ):
        app.include_router(router, dependencies=secured)
    if settings.dashboard_enabled:
        dashboard.mount(app)
    if settings.docs_enabled:
        docs.mount(app)
    # The SERVER span wraps every middleware above (its context is current in all of them).
    instrument(app, provider, settings.otel_excluded_urls)
    span, group_span = span_factory(tracer), group_span_factory(tracer)
    return app
