"""What is scoring right now: version, alias, thresholds, metrics and features."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.schemas import ModelOut, ReloadOut
from app.services.loading import reload_predictor
from app.services.rules import DEFAULT_TIERS

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["model"], responses={code: ERROR_RESPONSES[code] for code in (401, 429, 503)}
)


@router.get("/v1/model", response_model=ModelOut, summary="The loaded model")
async def model(runtime: RuntimeDep) -> ModelOut:
    """The bundle's identity and training record, or why the rules fallback is active."""
    loaded = runtime.model
    bundle = loaded.bundle
    predictor = runtime.service.predictor
    features = runtime.features
    metadata = dict(bundle.metadata) if bundle is not None else {}
    if bundle is not None:
        names = list(bundle.features)
    else:
        names = list(features.feature_names) if features is not None else []
    return ModelOut(
        version=predictor.version,
        decision_source=predictor.source,
        source=loaded.uri,
        alias=loaded.alias,
        registry_version=loaded.registry_version,
        problem=loaded.problem,
        feature_service=runtime.settings.feature_service,
        features=names,
        thresholds=(bundle.tiers if bundle is not None else DEFAULT_TIERS).to_dict(),
        metrics=metadata.pop("validation", {}),
        metadata=metadata,
    )


@router.post(
    "/v1/model/reload",
    response_model=ReloadOut,
    summary="Load the configured bundle again",
    responses={409: {"model": ReloadOut, "description": "The bundle was refused; nothing changed"}},
)
async def reload(runtime: RuntimeDep, response: Response) -> ReloadOut:
    """Verify, prove and load the bundle at ``BUNDLE_URI`` again (an MLflow alias is
    resolved again) and switch to it between two requests. The new bundle must pass its
    SHA-256 manifest, the value checks (finite, in-range calibration, ordered tiers,
    consistent shapes), equal the FeatureService's feature list and reproduce the scores
    its manifest records for the probe rows; otherwise it is refused (409, ``problem``
    says why) and the model in use keeps scoring. Reloads one process: on GKE roll the
    Deployment instead (docs/reliability.md)."""
    async with runtime.reloading:
        previous = runtime.service.predictor.version
        started = time.perf_counter()
        loaded, predictor = await run_in_threadpool(
            reload_predictor, runtime.settings, runtime.features, runtime.rulebook
        )
        ms = round((time.perf_counter() - started) * 1000, 1)
        if predictor is None:
            response.status_code = status.HTTP_409_CONFLICT
            runtime.metrics.model_reloads.labels("refused").inc()
            log.error(
                "reload refused: the old model keeps scoring",
                extra={"fields": {"why": loaded.problem, "version": previous, "ms": ms}},
            )
            problem = loaded.problem
            return ReloadOut(
                status="refused", version=previous, previous_version=previous, problem=problem
            )
        runtime.service.predictor = predictor
        runtime.model = loaded
        runtime.metrics.model_loaded.set(1)
        runtime.metrics.model_reloads.labels("reloaded").inc()
        proof = loaded.bundle.proof if loaded.bundle is not None else None
        fields = {"from": previous, "to": predictor.version, "proof": proof, "ms": ms}
        log.info("model reloaded", extra={"fields": fields})
        return ReloadOut(
            status="reloaded", version=predictor.version, previous_version=previous, problem=None
        )
