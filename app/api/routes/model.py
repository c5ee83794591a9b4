"""What is scoring right now: version, alias, thresholds, metrics and features."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.schemas import ModelOut
from app.services.rules import DEFAULT_TIERS

router = APIRouter(tags=["model"], responses={401: ERROR_RESPONSES[401]})


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
