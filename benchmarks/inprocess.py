"""Where one request's time goes, stage by stage, with the service's own objects.

Loads the runtime exactly as the lifespan does (``load_scoring``) and times each stage of
``/v1/predict`` for many distinct transactions, one at a time; then times the slow
alternatives the service avoids, on the same inputs, so each choice shows its gain.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from app.core.config import Settings
from app.schemas import TransactionIn
from app.schemas.answers import answer
from app.services.feature_rows import entity_ids
from app.services.features import OnlineFeatures
from app.services.loading import load_scoring
from benchmarks.naive_app import feast_row

STAGES = (
    "request parsing",
    "feature lookup",
    "feature assembly",
    "autoencoder",
    "classifier",
    "calibration and tiers",
    "explanation (reason codes)",
    "response encoding",
)


def _clock(samples: dict[str, list[float]], name: str, fn: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    out = fn()
    samples.setdefault(name, []).append(time.perf_counter() - began)
    return out


def _stats(values: Sequence[float], skip: int) -> dict[str, float]:
    us = np.asarray(values[skip:]) * 1e6
    return {
        "median_us": round(float(np.median(us)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
    }


def breakdown(settings: Settings, bodies: Sequence[bytes], warmup: int = 200) -> dict[str, Any]:
    """Median and p99 per stage (microseconds), and the alternatives side by side."""
    scoring = load_scoring(settings)
    service, scorer = scoring.service, scoring.service.predictor.scorer
    if scorer is None or service.features is None:
        raise RuntimeError(f"no model or no feature store: {scoring.model.problem}")
    gc.collect()
    gc.freeze()
    samples: dict[str, list[float]] = {}
    feast = OnlineFeatures.open(
        settings.feature_repo, settings.feature_store_yaml, settings.feature_service, "feast"
    )
    for body in bodies:
        tx = _clock(samples, STAGES[0], lambda b=body: TransactionIn.model_validate_json(b))
        ids = entity_ids([tx])
        # The views and, with velocity features, the customer's state (as the service does).
        found = _clock(samples, STAGES[1], lambda t=tx: service.lookup_blocking([t]))
        rows = _clock(samples, STAGES[2], lambda t=tx, f=found: service.rows([t], f))
        filled, _ = scorer.impute(rows.matrix(scorer.features))
        errors = _clock(samples, STAGES[3], lambda x=filled: _autoencoder(scorer, x))
        margin, leaf_ids = _clock(samples, STAGES[4], lambda x=filled: _classifier(scorer, x))
        _clock(samples, STAGES[5], lambda e=errors, m=margin: _calibrate(scorer, e, m))
        batch = scorer.score(rows.matrix(scorer.features))
        _clock(samples, STAGES[6], lambda b=batch: scorer.reasons(b))
        prediction = service.predictor.predict(rows)[0]
        _clock(
            samples,
            STAGES[7],
            lambda t=tx, p=prediction: orjson.dumps(answer(t, p, "v", 1.0)),
        )
        # the alternatives, on the same transaction
        _clock(samples, "feature lookup: Feast provider online_read", lambda i=ids: feast.read(i))
        _clock(
            samples, "feature lookup: Feast get_online_features", lambda t=tx: _feast_api(feast, t)
        )
        _clock(
            samples,
            "classifier: Booster.predict (one row)",
            lambda x=filled: scorer.bundle.classifier.predict(x, raw_score=True, num_threads=1),
        )
        _clock(
            samples,
            "explanation: exact TreeSHAP (pred_contrib)",
            lambda x=filled: scorer.forest.treeshap(x),
        )
    service.close()
    feast.close()
    gc.unfreeze()
    total = sum(float(np.median(samples[s][warmup:])) for s in STAGES) * 1e6
    return {
        "transactions": len(bodies) - warmup,
        "stages": {name: _stats(samples[name], warmup) for name in STAGES},
        "sum_of_medians_us": round(total, 1),
        "alternatives": {
            name: _stats(values, warmup) for name, values in samples.items() if name not in STAGES
        },
    }


def _autoencoder(scorer: Any, filled: np.ndarray) -> np.ndarray:
    errors = scorer.autoencoder_errors(filled)
    scorer.bundle.anomaly.score(errors.mean(axis=1))
    return errors


def _classifier(scorer: Any, filled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    leaf_ids = scorer.forest.global_leaves(scorer.forest.leaves(filled))
    return scorer.forest.margin(leaf_ids), leaf_ids


def _calibrate(scorer: Any, errors: np.ndarray, margin: np.ndarray) -> np.ndarray:
    bundle = scorer.bundle
    mean = errors.mean(axis=1)
    probability = bundle.calibrator(bundle.fusion(bundle.anomaly.score(mean), margin, mean))
    levels: np.ndarray = bundle.tiers.level_index(probability)
    return levels


def _feast_api(features: OnlineFeatures, tx: TransactionIn) -> Any:
    """Feast's high-level API for the same FeatureService (what the naive baseline calls)."""
    store = features._store
    return store.get_online_features(
        features=store.get_feature_service(features.service_name, allow_cache=True),
        entity_rows=[feast_row(tx)],
    ).to_dict()
