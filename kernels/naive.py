"""The naive backend: plain Python loops, one multiply-add at a time.

This is the readable reference, written for a student. Nothing is vectorized: every
number of every layer is computed by a ``for`` loop over Python floats, so that each
line is one step of the chain rule and can be checked by hand. It uses the very names
of :mod:`digitbench.kernels.numpy_backend` (``z1, a1, z2, a2, z3, p, dz3, dW3, db3,
da2, dz2, ...``): read the two side by side.

Shapes are in :mod:`digitbench.kernels.base`. Arrays come in as NumPy arrays and are
turned into nested Python lists (``W1[j][h]`` is the weight from input pixel ``j`` to
hidden unit ``h``); results go back as NumPy arrays of the parameters' dtype. The
arithmetic itself runs in Python floats (float64), so in float32 it is slightly *more*
precise than the other backends, and agrees with them to float32 rounding.

It is slow (about one batch of 64 per second): ``steps_per_call = 1`` tells the
trainer to hand it one step at a time, so the progress bar moves every batch.
"""

import math

import numpy as np

from digitbench.params import Params
from digitbench.pixels import scale_pixels

from .base import Backend


def matrix(rows, cols):
    """A rows x cols nested list of zeros."""
    return [[0.0] * cols for _ in range(rows)]


def linear_forward(A, W, b):
    """z = A @ W + b written out: z[i][h] = b[h] + sum_k A[i][k] * W[k][h].

    A : n x K nested list, W : K x H nested list, b : list of H; returns n x H.
    """
    n, K, H = len(A), len(W), len(b)
    z = matrix(n, H)
    for i in range(n):
        for h in range(H):
            total = b[h]
            for k in range(K):
                total += A[i][k] * W[k][h]
            z[i][h] = total
    return z


def linear_backward(A, dz, W):
    """Backprop through z = A @ W + b, given dz = dL/dz.

    dW[k][h] = sum_i A[i][k] * dz[i][h]     (dz/dW = A)
    db[h]    = sum_i dz[i][h]               (dz/db = 1)
    dA[i][k] = sum_h dz[i][h] * W[k][h]     (dz/dA = W); None if W is None
    """
    n, K, H = len(A), len(A[0]), len(dz[0])
    dW = matrix(K, H)
    db = [0.0] * H
    for i in range(n):
        for h in range(H):
            db[h] += dz[i][h]
            for k in range(K):
                dW[k][h] += A[i][k] * dz[i][h]
    if W is None:
        return dW, db, None
    dA = matrix(n, K)
    for i in range(n):
        for k in range(K):
            total = 0.0
            for h in range(H):
                total += dz[i][h] * W[k][h]
            dA[i][k] = total
    return dW, db, dA


def relu_forward(z):
    """a = max(z, 0), elementwise."""
    return [[v if v > 0 else 0.0 for v in row] for row in z]


def relu_backward(da, z):
    """dz = da * relu'(z), where relu'(z) = 1 if z > 0 else 0."""
    return [[d if v > 0 else 0.0 for d, v in zip(drow, zrow)] for drow, zrow in zip(da, z)]


def softmax(z):
    """Row-wise softmax, with the row maximum subtracted first.

    softmax(z) = softmax(z - c) for any constant c, and with c = max(z) the largest
    exponent is exp(0) = 1, so nothing overflows.
    """
    p = []
    for row in z:
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        p.append([v / s for v in e])
    return p


def softmax_cross_entropy(z3, y):
    """(mean cross-entropy of softmax(z3) against the labels y, dL/dz3), from the logits.

    -log p[i, y_i] = log(sum(exp(z3 - m))) - (z3[i, y_i] - m), m the row max (so that
    p = 0 never reaches the log). Softmax and cross-entropy together give
    dL/dz3 = (p - Y) / n, Y the one-hot labels (the softmax's Jacobian times -Y/p
    collapses to this one subtraction).
    """
    n = len(z3)
    p = softmax(z3)
    loss = 0.0
    for i in range(n):
        m = max(z3[i])
        loss += math.log(sum(math.exp(v - m) for v in z3[i])) - (z3[i][y[i]] - m)
    loss /= n
    dz3 = [[(p[i][c] - (1.0 if c == y[i] else 0.0)) / n for c in range(len(p[i]))] for i in range(n)]
    return loss, dz3


def as_lists(params, X):
    """The parameters and the batch as nested lists of Python floats."""
    return [a.tolist() for a in params], np.asarray(X, dtype=np.float64).tolist()


def forward_cache(params, X):
    """The forward pass keeping what backward needs: (z1, a1, z2, a2, z3), nested lists.

    ``params`` and ``X`` are nested lists (:func:`as_lists`).
    """
    W1, b1, W2, b2, W3, b3 = params
    z1 = linear_forward(X, W1, b1)  # (n, 128)
    a1 = relu_forward(z1)
    z2 = linear_forward(a1, W2, b2)  # (n, 64)
    a2 = relu_forward(z2)
    z3 = linear_forward(a2, W3, b3)  # (n, 10): the logits
    return z1, a1, z2, a2, z3


def sgd_update(w, v, g, lr, momentum):
    """One entry at a time, in place: v <- momentum * v + g; w <- w - lr * v
    (w <- w - lr * g when momentum = 0).

    Rounded to the parameters' dtype after each operation, like the vectorized update.
    """
    w, v, g = w.reshape(-1), v.reshape(-1), g.reshape(-1)
    t = w.dtype.type
    lr, momentum = t(lr), t(momentum)
    for k in range(len(w)):
        if momentum:
            v[k] = momentum * v[k] + g[k]
            w[k] = w[k] - lr * v[k]
        else:
            w[k] = w[k] - lr * g[k]


def center_gradients(grads, mean):
    """In place, one entry at a time: the centred network's steps, as
    :func:`digitbench.kernels.base.center_gradients` derives them:
    dW1 <- dW1 - mean^T db1, then db1 <- db1 - mean @ dW1."""
    dW1, db1 = grads.W1, grads.b1
    t = dW1.dtype.type
    D, H = dW1.shape
    for j in range(D):
        for h in range(H):
            dW1[j, h] = dW1[j, h] - t(mean[j]) * db1[h]
    for h in range(H):
        s = 0.0
        for j in range(D):
            s += float(mean[j]) * float(dW1[j, h])
        db1[h] = db1[h] - t(s)


class NaiveBackend(Backend):
    """Python loops over Python floats; results in the parameters' dtype."""

    name = "naive"
    #: One SGD step takes about a second, so the trainer hands over one at a time.
    steps_per_call = 1

    def forward(self, params, X, threads=1):
        z3 = forward_cache(*as_lists(params, X))[-1]
        return np.array(softmax(z3), dtype=params.W1.dtype).reshape(len(z3), 10)

    def logits(self, params, X):
        z3 = forward_cache(*as_lists(params, X))[-1]
        return np.array(z3, dtype=params.W1.dtype).reshape(len(z3), 10)

    def loss_and_grads(self, params, X, y):
        (W1, b1, W2, b2, W3, b3), X = as_lists(params, X)
        z1, a1, z2, a2, z3 = forward_cache((W1, b1, W2, b2, W3, b3), X)
        y = [int(label) for label in y]
        loss, dz3 = softmax_cross_entropy(z3, y)  # dz3 = dL/dz3 = (p - Y) / n
        dW3, db3, da2 = linear_backward(a2, dz3, W3)  # z3 = a2 @ W3 + b3
        dz2 = relu_backward(da2, z2)  # a2 = relu(z2)
        dW2, db2, da1 = linear_backward(a1, dz2, W2)  # z2 = a1 @ W2 + b2
        dz1 = relu_backward(da1, z1)  # a1 = relu(z1)
        dW1, db1, _ = linear_backward(X, dz1, None)  # z1 = X @ W1 + b1 (dX not needed)

        dtype = params.W1.dtype
        grads = Params(*(np.array(g, dtype=dtype) for g in (dW1, db1, dW2, db2, dW3, db3)))
        return float(loss), grads

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """SGD as in :meth:`Backend.train_batches`, the update written as loops too."""
        dtype = params.W1.dtype
        losses = np.empty(len(lrs))
        for step, lr in enumerate(lrs):
            rows = order[step * batch_size:(step + 1) * batch_size]
            X = scale_pixels(images[rows], dtype)  # uint8 -> [0, 1]
            loss, grads = self.loss_and_grads(params, X, [labels[r] for r in rows])
            if mean is not None:
                center_gradients(grads, mean)
            losses[step] = loss
            for w, v, g in zip(params, velocity, grads):
                sgd_update(w, v, g, lr, momentum)
        return losses



BACKEND = NaiveBackend
