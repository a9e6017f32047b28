"""The experiments' own NumPy network: a choice of hidden activation and of softmax.

The backends implement only the fixed ReLU network with a stable softmax. The sigmoid
and learning-rate experiments need variants of it, so this module re-writes the NumPy
backend's forward and backward pass (:mod:`digitbench.kernels.numpy_backend`, same
names, same shapes) with two switches looked up by name, in scikit-learn's table style:

- ``activation``: ``"relu"`` (the backends' network) or ``"sigmoid"``;
- ``softmax``: ``"stable"`` (the backends' ``log_softmax``, reused) or ``"naive"``,
  ``exp(z) / sum(exp(z))`` with no max-subtraction, as the seed write-up first had it.

With ``activation="relu", softmax="stable"`` it computes what the NumPy backend does
(the tests check this). It also records per-layer gradient norms every few steps.
"""

import numpy as np

from ..kernels.base import Backend
from ..kernels.numpy_backend import log_softmax
from ..params import Params


def sigmoid(z):
    """1 / (1 + exp(-z)), written as (1 + tanh(z / 2)) / 2: the same function, no overflow."""
    return 0.5 * (1 + np.tanh(0.5 * z))


def relu(z):
    return np.maximum(z, 0)


#: Hidden activations by name, and their derivatives as functions of (z, a = f(z)).
ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid}
DERIVATIVES = {
    "relu": lambda z, a: (z > 0).astype(z.dtype),  # 1 where z > 0, else 0
    "sigmoid": lambda z, a: a * (1 - a),  # s'(z) = s(z) (1 - s(z))
}


def naive_log_softmax(z):
    """log(exp(z) / sum(exp(z))) with no shift: exp overflows to inf once z > 88.7 (float32)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(z)
        return np.log(e / e.sum(axis=1, keepdims=True))


#: log-probabilities from logits (n, 10), by name.
LOG_SOFTMAXES = {"stable": log_softmax, "naive": naive_log_softmax}


class ActivationNet(Backend):
    """The 784-128-64-10 network with hidden activation ``activation``, in NumPy.

    Every ``every``-th call of :meth:`loss_and_grads` appends to :attr:`norms` a tuple
    ``(step, ||dW1||, ||dW2||, ||dW3||, mean f'(z1), mean f'(z2))``.
    """

    def __init__(self, activation="relu", softmax="stable", every=20):
        self.name = f"numpy-{activation}" + ("" if softmax == "stable" else f"-{softmax}-softmax")
        self.f, self.df = ACTIVATIONS[activation], DERIVATIVES[activation]
        self.log_softmax = LOG_SOFTMAXES[softmax]
        self.every = every
        self.calls = 0
        self.norms = []

    def _forward(self, params, X):
        W1, b1, W2, b2, W3, b3 = params
        z1 = X @ W1 + b1  # (n, 128)
        a1 = self.f(z1)
        z2 = a1 @ W2 + b2  # (n, 64)
        a2 = self.f(z2)
        z3 = a2 @ W3 + b3  # (n, 10), the logits
        return z1, a1, z2, a2, z3

    def forward(self, params, X):
        logp = self.log_softmax(self._forward(params, np.asarray(X, dtype=params.W1.dtype))[-1])
        return np.exp(logp)

    def loss_and_grads(self, params, X, y):
        W1, b1, W2, b2, W3, b3 = params
        X = np.asarray(X, dtype=W1.dtype)
        y = np.asarray(y, dtype=np.intp)
        n = len(X)
        z1, a1, z2, a2, z3 = self._forward(params, X)
        logp = self.log_softmax(z3)  # (n, 10)
        loss = -logp[np.arange(n), y].mean()
        dz3 = np.exp(logp)  # softmax + cross-entropy: dL/dz3 = (P - Y) / n
        dz3[np.arange(n), y] -= 1
        dz3 /= n
        dW3 = a2.T @ dz3  # (64, 10)
        db3 = dz3.sum(axis=0)
        f2 = self.df(z2, a2)  # f'(z2), (n, 64)
        dz2 = (dz3 @ W3.T) * f2
        dW2 = a1.T @ dz2  # (128, 64)
        db2 = dz2.sum(axis=0)
        f1 = self.df(z1, a1)  # f'(z1), (n, 128)
        dz1 = (dz2 @ W2.T) * f1
        dW1 = X.T @ dz1  # (784, 128)
        db1 = dz1.sum(axis=0)
        if self.calls % self.every == 0:
            self.norms.append((self.calls, float(np.linalg.norm(dW1)), float(np.linalg.norm(dW2)),
                               float(np.linalg.norm(dW3)), float(f1.mean()), float(f2.mean())))
        self.calls += 1
        return float(loss), Params(dW1, db1, dW2, db2, dW3, db3)


