"""The experiments' network: the NumPy backend with another activation or softmax.

The backends implement the fixed ReLU network with a stable softmax. The sigmoid and
learning-rate experiments need variants of it; :class:`ActivationNet` is the NumPy
backend (:class:`digitbench.kernels.numpy_backend.NumpyBackend`) with two switches
looked up by name, in scikit-learn's table style:

- ``activation``: a key of the backend's ``ACTIVATIONS`` / ``DERIVATIVES`` tables,
  ``"relu"`` (the backends' network) or ``"sigmoid"``;
- ``softmax``: ``"stable"`` (the backend's ``log_softmax``) or ``"naive"``,
  ``exp(z) / sum(exp(z))`` with no max-subtraction, as the seed write-up first had it.

It trains through the base class's plain loop (the NumPy backend's in-place loop is
written for ReLU only), and records per-layer gradient norms every few steps.
"""

import numpy as np

from ..kernels.base import Backend
from ..kernels.numpy_backend import DERIVATIVES, NumpyBackend, forward_cache, log_softmax


def naive_log_softmax(z):
    """log(exp(z) / sum(exp(z))) with no shift: exp overflows to inf once z > 88.7 (float32)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(z)
        return np.log(e / e.sum(axis=1, keepdims=True))


#: log-probabilities from logits (n, 10), by name.
LOG_SOFTMAXES = {"stable": log_softmax, "naive": naive_log_softmax}


class ActivationNet(NumpyBackend):
    """The 784-128-64-10 network with hidden activation ``activation``, in NumPy.

    Every ``every``-th call of :meth:`loss_and_grads` appends to :attr:`norms` a tuple
    ``(step, ||dW1||, ||dW2||, ||dW3||, mean f'(z1), mean f'(z2))``.
    """

    train_batches = Backend.train_batches  # the plain loop: loss_and_grads, then the update

    def __init__(self, activation="relu", softmax="stable", every=20):
        self.name = f"numpy-{activation}" + ("" if softmax == "stable" else f"-{softmax}-softmax")
        self.activation, self.softmax_name = activation, softmax
        self.every = every
        self.calls = 0
        self.norms = []

    def log_softmax(self, z3):
        return LOG_SOFTMAXES[self.softmax_name](z3)

    def forward(self, params, X, threads=1):
        X = np.asarray(X, dtype=params.W1.dtype)
        return np.exp(self.log_softmax(forward_cache(params, X, self.activation)[-1]))

    def loss_and_grads(self, params, X, y):
        loss, grads = super().loss_and_grads(params, X, y)
        if self.calls % self.every == 0:
            z1, a1, z2, a2, _ = forward_cache(params, np.asarray(X, dtype=params.W1.dtype), self.activation)
            df = DERIVATIVES[self.activation]
            self.norms.append((self.calls, float(np.linalg.norm(grads.W1)),
                               float(np.linalg.norm(grads.W2)), float(np.linalg.norm(grads.W3)),
                               float(np.mean(df(z1, a1))), float(np.mean(df(z2, a2)))))
        self.calls += 1
        return loss, grads
