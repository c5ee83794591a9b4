"""The autoencoder's forward pass in NumPy, and its input standardisation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fraud_model.arrays import FloatArray

ACTIVATIONS = ("relu", "linear", "tanh")
# Standardised inputs are clipped to +-CLIP: six standard deviations is anomalous enough,
# and bounded inputs keep float32 Keras and float64 NumPy within 1e-5 of each other.
CLIP = 6.0


@dataclass(frozen=True)
class DenseAutoencoder:
    """Dense layers ``x @ W + b`` followed by their activation.

    Keras computes in float32; the weights are Keras's float32 values, but the products run
    in float64 so the only rounding left is Keras's own (parity within 1e-5).
    """

    weights: tuple[FloatArray, ...]
    biases: tuple[FloatArray, ...]
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(np.asarray(w, np.float64) for w in self.weights))
        object.__setattr__(self, "biases", tuple(np.asarray(b, np.float64) for b in self.biases))
        if not len(self.weights) == len(self.biases) == len(self.activations):
            raise ValueError("weights, biases and activations differ in length")
        unknown = set(self.activations) - set(ACTIVATIONS)
        if unknown:
            raise ValueError(f"unsupported activations: {sorted(unknown)}")
        widths = [w.shape for w in self.weights]
        for (_, out), (nxt, _) in zip(widths, widths[1:], strict=False):
            if out != nxt:
                raise ValueError(f"layer shapes do not chain: {widths}")
        if widths[0][0] != widths[-1][1]:
            raise ValueError("an autoencoder's output width must equal its input width")

    @property
    def n_features(self) -> int:
        return int(self.weights[0].shape[0])

    def reconstruct(self, inputs: FloatArray) -> FloatArray:
        """Reconstruction of standardised inputs (n x d).

        Each row is its own 1 x d product (a stack of n, one BLAS call per row inside one
        ``matmul``): a row's result is then the same bits whether it is scored alone or in
        a batch of any size. One n x d product would let BLAS pick another kernel, and
        another rounding, for each batch size; and the stack is faster for n = 1,000 too.
        """
        h: FloatArray = np.asarray(inputs, dtype=np.float64)[:, None, :]
        for w, b, activation in zip(self.weights, self.biases, self.activations, strict=True):
            h = h @ w
            h += b
            if activation == "relu":
                np.maximum(h, 0.0, out=h)
            elif activation == "tanh":
                np.tanh(h, out=h)
        return h[:, 0, :]


@dataclass(frozen=True)
class Standardizer:
    """Signed log, z-score, clip: ``(sign(x) log1p|x| - mean) / scale`` within +-CLIP."""

    mean: FloatArray
    scale: FloatArray

    @staticmethod
    def squash(values: FloatArray) -> FloatArray:
        squashed: FloatArray = np.sign(values) * np.log1p(np.abs(values))
        return squashed

    @classmethod
    def fit(cls, values: FloatArray) -> Standardizer:
        squashed = cls.squash(np.asarray(values, dtype=np.float64))
        scale = squashed.std(axis=0)
        return cls(squashed.mean(axis=0), np.where(scale > 1e-9, scale, 1.0))

    @cached_property
    def _inverse_scale(self) -> FloatArray:
        inverse: FloatArray = 1.0 / self.scale
        return inverse

    def transform(self, values: FloatArray) -> FloatArray:
        out = self.squash(values)
        out -= self.mean
        out *= self._inverse_scale
        # ufuncs rather than np.clip: the same result without its per-call dispatch cost
        np.minimum(out, CLIP, out=out)
        np.maximum(out, -CLIP, out=out)
        return out


@dataclass(frozen=True)
class AnomalyNormalizer:
    """Maps reconstruction error to [0, 1]: its quantile among legitimate validation traffic.

    ``quantiles`` are the log errors of legitimate validation rows at evenly spaced levels;
    a score of 0.99 means the transaction reconstructs worse than 99% of legitimate ones.
    """

    log_error_quantiles: FloatArray

    @classmethod
    def fit(cls, legit_errors: FloatArray, n_quantiles: int) -> AnomalyNormalizer:
        levels = np.linspace(0.0, 1.0, n_quantiles)
        logs = np.log(np.asarray(legit_errors, dtype=np.float64) + 1e-12)
        return cls(np.quantile(logs, levels))

    @cached_property
    def _levels(self) -> FloatArray:
        return np.linspace(0.0, 1.0, self.log_error_quantiles.size)

    def score(self, errors: FloatArray) -> FloatArray:
        scores: FloatArray = np.interp(
            np.log(errors + 1e-12), self.log_error_quantiles, self._levels
        )
        return scores
