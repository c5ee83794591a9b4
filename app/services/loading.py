"""Load what scoring needs, once: the feature store, the bundle, the scoring service.

Used by the API's lifespan and by the batch command, so both score the same way.
Anything missing degrades (rules, request-only features) and is reported, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.core.config import Settings
from app.services.features import FeatureStoreError, OnlineFeatures
from app.services.metrics import ServiceMetrics
from app.services.model_loader import LoadedModel, load_model
from app.services.predictor import Predictor
from app.services.rulebook import Rulebook
from app.services.scoring_service import GroupSpan, ScoringService
from app.services.velocity import VelocityTracker
from fraud_model.scorer import Stage, no_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scoring:
    model: LoadedModel
    features: OnlineFeatures | None
    feature_problem: str | None
    service: ScoringService
    rulebook: Rulebook


def _load(settings: Settings, features: OnlineFeatures | None, reload: bool) -> LoadedModel:
    """The bundle named by ``settings``, proven against the FeatureService's feature list
    (the bundle's own list without a store); a reload also requires recorded probe scores."""
    return load_model(
        settings.bundle_uri,
        settings.mlflow_tracking_uri,
        expected_features=features.feature_names if features is not None else None,
        feature_source=features.service_name if features is not None else "the FeatureService",
        require_probes=reload,
    )


def predictor(
    settings: Settings, model: LoadedModel, features: OnlineFeatures | None, rulebook: Rulebook
) -> Predictor:
    """The model of ``model`` (the rules fallback without a bundle), then the rule set."""
    names = features.feature_names if features is not None else None
    return Predictor(model.bundle, settings.reasons_top_k, settings.reason_method, rulebook, names)


def feature_names(features: OnlineFeatures | None, model: LoadedModel) -> tuple[str, ...] | None:
    """The FeatureService's features (the bundle's without a store; None without both:
    the rules may then name any feature, and find it missing)."""
    if features is not None:
        return tuple(features.feature_names)
    return tuple(model.bundle.features) if model.bundle is not None else None


def reload_predictor(
    settings: Settings, features: OnlineFeatures | None, rulebook: Rulebook
) -> tuple[LoadedModel, Predictor | None]:
    """Load the bundle at ``settings.bundle_uri`` again (an MLflow alias is resolved
    again); a predictor only when the new bundle is proven (values, feature list, trial
    score against the manifest's probe scores)."""
    model = _load(settings, features, reload=True)
    if model.bundle is None:
        return model, None
    return model, predictor(settings, model, features, rulebook)


def velocity_tracker(
    settings: Settings, features: OnlineFeatures | None, metrics: ServiceMetrics | None
) -> VelocityTracker | None:
    """The background pusher of velocity state, when the service has velocity features
    and ``settings.velocity_push`` is on."""
    if features is None or not features.velocity or not settings.velocity_push:
        return None
    return VelocityTracker(
        features.state_store(),
        flush_interval_s=settings.velocity_flush_ms / 1000,
        max_pending=settings.velocity_max_pending,
        max_future_skew_s=settings.velocity_max_future_skew_seconds,
        on_push=metrics.observe_push if metrics is not None else None,
        on_failure=metrics.velocity_failures.inc if metrics is not None else None,
    )


def load_scoring(
    settings: Settings,
    span: Stage = no_stage,
    metrics: ServiceMetrics | None = None,
    push_velocity: bool = False,
    group_span: GroupSpan | None = None,
) -> Scoring:
    """Open the feature store and load the bundle named by ``settings``; with
    ``push_velocity`` (the API), scored transactions update the velocity state."""
    try:
        opened = OnlineFeatures.open(
            settings.feature_repo,
            settings.feature_store_yaml,
            settings.feature_service,
            settings.feature_reader,
            busy_timeout_s=settings.feature_timeout_ms / 1000,
            socket_timeout_s=settings.feature_store_socket_timeout_ms / 1000,
        )
        try:
            opened.warm_up()
        except Exception as exc:  # an outage now is the readiness check's to report
            log.warning("online store warm-up failed", extra={"fields": {"error": repr(exc)}})
        features: OnlineFeatures | None = opened
        feature_problem = None
    except FeatureStoreError as exc:
        features, feature_problem = None, str(exc)
        log.error("no feature store: request fields only", extra={"fields": {"why": str(exc)}})
    model = _load(settings, features, reload=False)
    on_outcome = metrics.rule_reloads.labels if metrics is not None else None
    rulebook = Rulebook(
        settings.rules_file,
        feature_names(features, model),
        (lambda outcome: on_outcome(outcome).inc()) if on_outcome is not None else None,
    )
    service = ScoringService(
        features,
        predictor(settings, model, features, rulebook),
        settings.feature_timeout_ms / 1000,
        span,
        batch_timeout_s=settings.feature_batch_timeout_ms / 1000,
        coalesce_max=settings.coalesce_max,
        velocity=velocity_tracker(settings, features, metrics) if push_velocity else None,
        abandon_after_s=settings.feature_lookup_abandon_seconds,
        max_abandoned=settings.feature_lookup_max_abandoned,
        on_abandon=metrics.lookup_abandoned.inc if metrics is not None else None,
        group_span=group_span,
    )
    return Scoring(model, features, feature_problem, service, rulebook)
