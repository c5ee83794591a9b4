"""The naive baseline: the same model and features, served the way typical projects do it.

Written deliberately in the common style, to give every speed figure a ratio:

- a synchronous endpoint (FastAPI runs it on its thread pool);
- Feast's ``get_online_features`` with the FeatureService per request (Feast computes the
  on-demand request features itself, with the project's shared code);
- the autoencoder as a Keras model, ``model.predict`` per request (TensorFlow in the
  serving process);
- LightGBM's default ``Booster.predict`` on a pandas DataFrame, and ``pred_contrib``
  (exact TreeSHAP) for the reason codes;
- pydantic response models;
- with velocity features (``fraud_detection_v2``), the customer's velocity state read with
  a second ``get_online_features`` and pushed back with ``FeatureStore.push`` (a
  DataFrame), synchronously, before answering.

It reuses the bundle's imputation values, anomaly normaliser, fusion, calibration and tiers,
so its probabilities equal the service's (``make bench`` checks them against each other).
Configuration comes from ``NAIVE_BUNDLE``, ``NAIVE_FEATURE_REPO`` and
``NAIVE_FEATURE_SERVICE`` (a benchmark tool, not the service).
Run: ``uvicorn benchmarks.naive_app:create_app --factory``.
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
from feature_repo.online_request import online_request
from feature_repo.request_features import REQUEST_DEFAULTS
from feature_repo.velocity import (
    FEATURES_VIEW,
    PUSH_SOURCE,
    STATE_FIELDS,
    STATE_VIEW,
    VelocityEvent,
    VelocityState,
)
from fraud_model.bundle import load_bundle
from fraud_model.decisions import DECISIONS, RISK_LEVELS


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
    from feast.data_source import PushMode

    bundle = load_bundle(Path(os.environ.get("NAIVE_BUNDLE", "models/bundle")))
    repo = Path(os.environ.get("NAIVE_FEATURE_REPO", "feature_repo"))
    store = feast.FeatureStore(repo_path=str(repo))
    service = store.get_feature_service(
        os.environ.get("NAIVE_FEATURE_SERVICE", "fraud_detection_v2")
    )
    velocity = any(p.name == FEATURES_VIEW for p in service.feature_view_projections)
    state_refs = [f"{STATE_VIEW}:{name}" for name in STATE_FIELDS]
    model = keras_autoencoder(bundle)
    features = list(bundle.features)
    app = FastAPI(title="naive baseline")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    def push_velocity(tx: TransactionIn) -> None:
        key = {"customer_id": tx.customer_id, "terminal_id": tx.terminal_id}
        stored = store.get_online_features(
            features=state_refs
            + ["terminal_location:terminal_x_km", "terminal_location:terminal_y_km"],
            entity_rows=[key],
        ).to_dict()
        state = VelocityState.from_row({name: stored[name][0] for name in STATE_FIELDS})
        x, y = stored["terminal_x_km"][0], stored["terminal_y_km"][0]
        event = VelocityEvent(
            tx.epoch_seconds, tx.amount, tx.terminal_id,
            float("nan") if x is None else x, float("nan") if y is None else y,
            tx.transaction_id,
        )  # fmt: skip
        state = state.add([event])
        row: dict[str, Any] = {"customer_id": tx.customer_id, **state.to_row()}
        row["event_timestamp"] = pd.Timestamp(state.newest_seconds, unit="s", tz="UTC")
        store.push(PUSH_SOURCE, pd.DataFrame([row]), to=PushMode.ONLINE)

    @app.post("/v1/predict", response_model=NaiveScore)
    def predict(tx: TransactionIn) -> NaiveScore:
        online = store.get_online_features(features=service, entity_rows=[feast_row(tx)]).to_df()
        frame = online.reindex(columns=features).astype(float)
        frame = frame.fillna(pd.Series(bundle.fill_values, index=features))
        x = frame.to_numpy()
        standardised = bundle.standardizer.transform(x)
        reconstruction = model.predict(standardised.astype(np.float32), verbose=0)
        error = np.square(standardised - reconstruction).mean(axis=1)
        if velocity:
            push_velocity(tx)
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
