"""The vectorized NumPy backend: the idiomatic version, and the baseline for speed.

Each line is one whole-batch operation; the matrix products go to the BLAS that NumPy
was built with (OpenBLAS in the wheels), which is where nearly all the time goes.
Shapes are in :mod:`digitbench.kernels.base`.
"""

import numpy as np

from digitbench.params import Params

from .base import Backend


def relu(z):
    """max(z, 0), elementwise."""
    return np.maximum(z, 0)


def softmax(z):
    """Row-wise softmax of ``z`` (n, k), numerically stable.

    softmax(z) = softmax(z - c) for any constant c per row; with c = max(z) the largest
    exponent is exp(0) = 1, so nothing overflows (without it, a logit of 89 already
    overflows float32's exp to inf, and inf / inf is NaN).
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z):
    """log(softmax(z)) row-wise, computed as (z - m) - log(sum(exp(z - m)))."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def forward_cache(params, X):
    """Forward pass keeping what backward needs: (z1, a1, z2, a2, z3)."""
    W1, b1, W2, b2, W3, b3 = params
    z1 = X @ W1 + b1  # (n, 128)
    a1 = relu(z1)
    z2 = a1 @ W2 + b2  # (n, 64)
    a2 = relu(z2)
    z3 = a2 @ W3 + b3  # (n, 10): the logits
    return z1, a1, z2, a2, z3


class NumpyBackend(Backend):
    """Vectorized NumPy, float32 or float64 as the parameters are."""

    name = "numpy"

    def forward(self, params, X):
        X = np.asarray(X, dtype=params.W1.dtype)
        return softmax(forward_cache(params, X)[-1])

    def loss_and_grads(self, params, X, y):
        W1, b1, W2, b2, W3, b3 = params
        X = np.asarray(X, dtype=W1.dtype)
        y = np.asarray(y, dtype=np.intp)
        n = len(X)
        z1, a1, z2, a2, z3 = forward_cache(params, X)
        logp = log_softmax(z3)  # (n, 10)
        loss = -logp[np.arange(n), y].mean()  # mean cross-entropy

        # Softmax and cross-entropy together: dL/dz3 = (p - Y) / n, Y the one-hot labels.
        dz3 = np.exp(logp)
        dz3[np.arange(n), y] -= 1
        dz3 /= n
        dW3 = a2.T @ dz3  # (64, 10)
        db3 = dz3.sum(axis=0)
        da2 = dz3 @ W3.T  # (n, 64)
        dz2 = da2 * (z2 > 0)  # relu'(z) = 1 where z > 0, else 0
        dW2 = a1.T @ dz2  # (128, 64)
        db2 = dz2.sum(axis=0)
        da1 = dz2 @ W2.T  # (n, 128)
        dz1 = da1 * (z1 > 0)
        dW1 = X.T @ dz1  # (784, 128)
        db1 = dz1.sum(axis=0)
        return float(loss), Params(dW1, db1, dW2, db2, dW3, db3)


BACKEND = NumpyBackend
