"""The naive baseline: the same model and features, served the way typical projects do it.

Written deliberately in the common style, to give every speed figure a ratio:

- a synchronous endpoint (FastAPI runs it on its thread pool);
- Feast's ``get_online_features`` with the FeatureService per request (Feast computes the
  on-demand request features itself, with the project's shared code);
- the autoencoder as a Keras model, ``model.predict`` per request (TensorFlow in the
  serving process);
- LightGBM's default ``Booster.predict`` on a pandas DataFrame, and ``pred_contrib``
  (exact TreeSHAP) for the reason codes;
- pydantic response models.

It reuses the bundle's imputation values, anomaly normaliser, fusion, calibration and tiers,
so its probabilities equal the service's (``make bench`` checks them against each other).
Configuration comes from ``NAIVE_BUNDLE`` and ``NAIVE_FEATURE_REPO`` (a benchmark tool,
not the service). Run: ``uvicorn benchmarks.naive_app:create_app --factory``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

from app.schemas import TransactionIn
from app.services.scoring.bundle import load_bundle
from app.services.scoring.decisions import DECISIONS, RISK_LEVELS
from feature_repo.online_request import online_request
from feature_repo.request_features import REQUEST_DEFAULTS


class NaiveReason(BaseModel):
    feature: str
    contribution: float


class NaiveScore(BaseModel):
    transaction_id: str
    fraud_probability: float
    risk_level: str
    decision: str
    reasons: list[NaiveReason]


def feast_row(tx: TransactionIn) -> dict[str, Any]:
    """The ``get_online_features`` entity row of a request (keys and request fields)."""
    row = online_request(tx)
    if tx.merchant_category is None:
        row["merchant_category"] = REQUEST_DEFAULTS["merchant_category"]
    return row


def keras_autoencoder(bundle: Any) -> Any:
    """A Keras model holding the bundle's autoencoder weights."""
    import keras

    ae = bundle.autoencoder
    model = keras.Sequential(
        [keras.Input(shape=(ae.n_features,))]
        + [
            keras.layers.Dense(w.shape[1], activation=activation)
            for w, activation in zip(ae.weights, ae.activations, strict=True)
        ]
    )
    for layer, w, b in zip(model.layers, ae.weights, ae.biases, strict=True):
        layer.set_weights([w.astype(np.float32), b.astype(np.float32)])
    return model


def create_app() -> FastAPI:
    import feast

    bundle = load_bundle(Path(os.environ.get("NAIVE_BUNDLE", "models/bundle")))
    repo = Path(os.environ.get("NAIVE_FEATURE_REPO", "feature_repo"))
    store = feast.FeatureStore(repo_path=str(repo))
    service = store.get_feature_service("fraud_detection_v1")
    model = keras_autoencoder(bundle)
    features = list(bundle.features)
    app = FastAPI(title="naive baseline")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/predict", response_model=NaiveScore)
    def predict(tx: TransactionIn) -> NaiveScore:
        online = store.get_online_features(features=service, entity_rows=[feast_row(tx)]).to_df()
        frame = online.reindex(columns=features).astype(float)
        frame = frame.fillna(pd.Series(bundle.fill_values, index=features))
        x = frame.to_numpy()
        standardised = bundle.standardizer.transform(x)
        reconstruction = model.predict(standardised.astype(np.float32), verbose=0)
        error = np.square(standardised - reconstruction).mean(axis=1)
        ae_score = bundle.anomaly.score(error)
        margin = bundle.classifier.predict(frame, raw_score=True)
        probability = bundle.calibrator(bundle.fusion(ae_score, margin, error))
        level = RISK_LEVELS[int(bundle.tiers.level_index(probability)[0])]
        contrib = bundle.classifier.predict(frame, pred_contrib=True)[0, :-1]
        top = np.argsort(-contrib)[:3]
        return NaiveScore(
            transaction_id=tx.transaction_id,
            fraud_probability=float(probability[0]),
            risk_level=level,
            decision=DECISIONS[level],
            reasons=[
                NaiveReason(feature=features[j], contribution=float(contrib[j]))
                for j in top
                if contrib[j] > 0
            ],
        )

    return app
