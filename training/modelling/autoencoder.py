"""The TensorFlow/Keras autoencoder: fitted on legitimate traffic, exported to NumPy.

Only training imports this module (:func:`training.modelling.fit.train_ensemble`); the
service runs the exported weights through ``fraud_model.autoencoder.DenseAutoencoder``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraud_model.autoencoder import AnomalyNormalizer, DenseAutoencoder, Standardizer


@dataclass(frozen=True)
class AutoencoderConfig:
    """``params.yaml`` section ``train.autoencoder``."""

    hidden_units: tuple[int, ...] = (64, 32, 16, 32, 64)
    activation: str = "relu"
    learning_rate: float = 2e-3
    batch_size: int = 1024
    max_epochs: int = 30
    patience: int = 3
    max_train_rows: int = 100_000
    score_quantiles: int = 201
    # Legitimate rows held out of the fit: its early stopping, and the legitimate error
    # quantiles that turn an error into a score (rows the network never saw).
    holdout_share: float = 0.1
    max_holdout_rows: int = 20_000


def _tensorflow(threads: int) -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process; the first setting stays
    return tf


def build_autoencoder(n_features: int, config: AutoencoderConfig, seed: int) -> Any:
    """Input -> 64 -> 32 -> 16 -> 32 -> 64 -> Output (dense; linear output)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(n_features,))]
    layers += [
        keras.layers.Dense(units, activation=config.activation) for units in config.hidden_units
    ]
    layers.append(keras.layers.Dense(n_features, activation="linear"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    return model


def fit_autoencoder(
    train: np.ndarray, validation: np.ndarray, config: AutoencoderConfig, seed: int, threads: int
) -> tuple[Any, dict[str, Any]]:
    """Fit on standardised legitimate rows with early stopping on validation loss."""
    _tensorflow(threads)
    import keras

    rng = np.random.default_rng(seed)
    if len(train) > config.max_train_rows:
        train = train[rng.choice(len(train), config.max_train_rows, replace=False)]
    model = build_autoencoder(train.shape[1], config, seed)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        train,
        train,
        validation_data=(validation, validation),
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=0,
    )
    losses = history.history["val_loss"]
    report = {
        "epochs": len(losses),
        "best_epoch": int(np.argmin(losses)) + 1,
        "best_val_loss": float(np.min(losses)),
        "train_rows": len(train),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model, report


def export_autoencoder(model: Any) -> DenseAutoencoder:
    """The Keras model's dense layers as NumPy weights."""
    dense = [layer for layer in model.layers if layer.get_weights()]
    return DenseAutoencoder(
        weights=tuple(np.asarray(layer.get_weights()[0], np.float32) for layer in dense),
        biases=tuple(np.asarray(layer.get_weights()[1], np.float32) for layer in dense),
        activations=tuple(layer.get_config()["activation"] for layer in dense),
    )


def keras_reconstruct(model: Any, standardised: np.ndarray) -> np.ndarray:
    """Keras's own reconstruction (the reference for the NumPy parity check)."""
    out: np.ndarray = model.predict(standardised.astype(np.float32), verbose=0, batch_size=4096)
    return out


@dataclass(frozen=True)
class AutoencoderMember:
    """A fitted autoencoder with what scoring needs: input scaling and score quantiles."""

    standardizer: Standardizer
    autoencoder: DenseAutoencoder
    anomaly: AnomalyNormalizer
    keras_model: Any
    report: dict[str, Any]

    def errors(self, filled: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error of imputed rows (as the scorer computes it)."""
        standardised = self.standardizer.transform(filled)
        reconstructed = self.autoencoder.reconstruct(standardised)
        out: np.ndarray = np.mean(np.square(reconstructed - standardised), axis=1)
        return out


def fit_member(
    legit: np.ndarray, config: AutoencoderConfig, seed: int, threads: int
) -> AutoencoderMember:
    """Fit on imputed legitimate rows: a seeded holdout stops it early and fits the score
    quantiles; the standardiser is fitted on the rest."""
    rng = np.random.default_rng(seed)
    n_holdout = int(min(config.max_holdout_rows, max(1, round(config.holdout_share * len(legit)))))
    order = rng.permutation(len(legit))
    holdout, rest = legit[order[:n_holdout]], legit[order[n_holdout:]]
    standardizer = Standardizer.fit(rest)
    keras_model, report = fit_autoencoder(
        standardizer.transform(rest), standardizer.transform(holdout), config, seed, threads
    )
    member = AutoencoderMember(
        standardizer=standardizer,
        autoencoder=export_autoencoder(keras_model),
        anomaly=AnomalyNormalizer(np.array([0.0, 1.0])),
        keras_model=keras_model,
        report={**report, "holdout_rows": n_holdout},
    )
    anomaly = AnomalyNormalizer.fit(member.errors(holdout), config.score_quantiles)
    return AutoencoderMember(standardizer, member.autoencoder, anomaly, keras_model, member.report)
