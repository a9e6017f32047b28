"""The vectorized NumPy backend: the idiomatic version, and the baseline for speed.

Each line is one whole-batch operation; the matrix products go to the BLAS that NumPy
was built with (OpenBLAS in the wheels), which is where nearly all the time goes.
Shapes are in :mod:`digitbench.kernels.base`.
"""

import numpy as np

from digitbench.params import Params

from .base import Backend, center_gradients, sgd_update

#: Every this many steps, velocities below float32's smallest normal number are set to 0.
FLUSH_EVERY = 16


def sigmoid(z):
    """1 / (1 + exp(-z)), written as (1 + tanh(z / 2)) / 2: the same function, no overflow."""
    return 0.5 * (1 + np.tanh(0.5 * z))


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


def linear_forward(a, W, b, out=None):
    """z = a @ W + b, of shape (n, m), for ``a`` (n, k), ``W`` (k, m), ``b`` (m,); into ``out`` if given."""
    z = np.dot(a, W, out=out)
    z += b
    return z


def linear_backward(a, dz, W=None, dW=None, db=None, da=None):
    """The gradients of z = a @ W + b from dz (n, m): (dW, db, da).

        dW = a.T @ dz   (k, m)      db = sum of dz's rows   (m,)      da = dz @ W.T   (n, k)

    ``da`` is None when ``W`` is None (the input's gradient is not needed); ``dW``,
    ``db``, ``da``: buffers to write into, optional.
    """
    dW = np.dot(a.T, dz, out=dW)
    db = np.sum(dz, axis=0, out=db)
    if W is not None:
        da = np.dot(dz, W.T, out=da)
    return dW, db, da


def relu_forward(z, out=None):
    """a = max(z, 0), elementwise; into ``out`` if given (``out=z`` overwrites z)."""
    return np.maximum(z, 0, out=out)


def relu_backward(da, z, out=None):
    """dz = da * relu'(z), relu'(z) = 1 where z > 0, else 0; ``z`` may be a = relu(z)
    instead (a > 0 exactly where z > 0); into ``out`` if given (``out=da``: in place)."""
    return np.multiply(da, z > 0, out=out)


def softmax_cross_entropy(z3, y, log_softmax=log_softmax):
    """(mean cross-entropy of softmax(z3) against the labels y, dL/dz3 of shape (n, 10)).

    From the logits: -log p[i, y_i] = log(sum(exp(z3 - m))) - (z3[i, y_i] - m)
    (``log_softmax``). Softmax and cross-entropy together give dL/dz3 = (p - Y) / n, Y
    the one-hot labels (the softmax's Jacobian times -Y/p collapses to this subtraction).
    """
    n = len(z3)
    logp = log_softmax(z3)  # (n, 10)
    loss = -logp[np.arange(n), y].mean()
    dz3 = np.exp(logp)
    dz3[np.arange(n), y] -= 1
    dz3 /= n
    return loss, dz3


def softmax_cross_entropy_inplace(z3, y):
    """:func:`softmax_cross_entropy` overwriting ``z3`` (n, 10) with dL/dz3; returns the loss.

    z3 <- z3 - m (m the row max); p = exp(z3) / sum(exp(z3)), in place; the loss
    log(sum(exp(z3 - m))) - (z3[i, y_i] - m) from the shifted logits, then p - Y, then / n.
    """
    n = len(z3)
    z3 -= z3.max(axis=1, keepdims=True)
    picked = z3[np.arange(n), y]  # shifted logit of the true class (a copy)
    np.exp(z3, out=z3)
    total = z3.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - picked)
    z3 /= total  # z3 is now p
    z3[np.arange(n), y] -= 1  # dz3 = (p - Y) / n
    z3 *= z3.dtype.type(1 / n)
    return loss


#: Hidden activations by name (scikit-learn's style), and their derivatives as
#: functions of (z, a = f(z)): the backend's network is "relu"; the experiments swap in
#: "sigmoid" by name (digitbench.experiments.network).
ACTIVATIONS = {"relu": relu_forward, "sigmoid": sigmoid}
DERIVATIVES = {
    "relu": lambda z, a: z > 0,  # relu'(z) = 1 where z > 0, else 0
    "sigmoid": lambda z, a: a * (1 - a),  # s'(z) = s(z) (1 - s(z))
}


def forward_cache(params, X, activation="relu"):
    """Forward pass keeping what backward needs: (z1, a1, z2, a2, z3)."""
    W1, b1, W2, b2, W3, b3 = params
    f = ACTIVATIONS[activation]
    z1 = linear_forward(X, W1, b1)  # (n, 128)
    a1 = f(z1)
    z2 = linear_forward(a1, W2, b2)  # (n, 64)
    a2 = f(z2)
    z3 = linear_forward(a2, W3, b3)  # (n, 10): the logits
    return z1, a1, z2, a2, z3


class NumpyBackend(Backend):
    """Vectorized NumPy, float32 or float64 as the parameters are."""

    name = "numpy"
    #: Batches up to this size train with BLAS on one thread (the caller holds it:
    #: :func:`digitbench.threads.blas_single_thread`): products this small lose more in
    #: waking and waiting for a second BLAS thread than it gains.
    single_thread_blas_batch = 256
    #: The hidden activation, a key of ACTIVATIONS (a subclass may choose another).
    activation = "relu"

    def forward(self, params, X, threads=1):
        X = np.asarray(X, dtype=params.W1.dtype)
        return softmax(forward_cache(params, X, self.activation)[-1])

    def logits(self, params, X):
        return forward_cache(params, np.asarray(X, dtype=params.W1.dtype), self.activation)[-1]

    def loss_and_grads(self, params, X, y):
        W1, b1, W2, b2, W3, b3 = params
        X = np.asarray(X, dtype=W1.dtype)
        y = np.asarray(y, dtype=np.intp)
        n = len(X)
        df = DERIVATIVES[self.activation]
        z1, a1, z2, a2, z3 = forward_cache(params, X, self.activation)
        loss, dz3 = softmax_cross_entropy(z3, y, self.log_softmax)  # dz3 = (p - Y) / n
        dW3, db3, da2 = linear_backward(a2, dz3, W3)  # z3 = a2 @ W3 + b3
        dz2 = da2 * df(z2, a2)  # a2 = f(z2); relu'(z) = 1 where z > 0, else 0
        dW2, db2, da1 = linear_backward(a1, dz2, W2)  # z2 = a1 @ W2 + b2
        dz1 = da1 * df(z1, a1)  # a1 = f(z1)
        dW1, db1, _ = linear_backward(X, dz1)  # z1 = X @ W1 + b1 (dX not needed)
        return float(loss), Params(dW1, db1, dW2, db2, dW3, db3)

    def log_softmax(self, z3):
        """log-probabilities (n, 10) from the logits: the stable :func:`log_softmax`."""
        return log_softmax(z3)

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """SGD steps as in :meth:`Backend.train_batches`, with every array preallocated.

        The math is exactly :meth:`loss_and_grads` followed by the momentum update; it
        is written here with ``out=`` arguments and in-place operations, so that a step
        allocates (almost) nothing and touches each buffer as few times as possible:

        - ``a = relu(z)`` overwrites ``z``: relu'(z) = [z > 0] = [a > 0], so backward
          needs only ``a``;
        - the logits are shifted by their row max and exponentiated in place;
        - ``1/n`` of the mean is folded into ``dz3``, as in :meth:`loss_and_grads`;
        - the six parameters, their velocities and gradients live, for the duration of
          the call, in three flat arrays of 109,386 values (the six arrays are views into
          them), so the SGD update (:func:`~.base.sgd_update`) is one call on whole
          arrays instead of six; the parameters and velocities are copied back at the end;
        - every ``FLUSH_EVERY`` steps, subnormal velocities (below 1.2e-38 in float32) are
          set to 0. A pixel that is rarely non-zero has its velocity decay by the
          momentum every step until it is subnormal, where arithmetic is much slower.
          The numba backend gets the same effect from the CPU's
          flush-to-zero mode (kernels/denormals.py).

        The agreement tests hold it to :meth:`loss_and_grads` to rounding error. A
        subclass with another ``activation`` trains by the plain loop of
        :meth:`Backend.train_batches` (``loss_and_grads``, then the update), since the
        in-place steps here are ReLU's.
        """
        if self.activation != "relu":
            return Backend.train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum,
                                         mean)
        dtype = params.W1.dtype
        flat_w, flat_v, flat_g = (np.empty(sum(w.size for w in params), dtype) for _ in range(3))
        views = [_views(flat, params) for flat in (flat_w, flat_v, flat_g)]
        for view, w, v in zip(views[0], params, velocity):  # copy in
            view[...] = w
        for view, v in zip(views[1], velocity):
            view[...] = v
        W1, b1, W2, b2, W3, b3 = views[0]
        dW1, db1, dW2, db2, dW3, db3 = views[2]
        B = batch_size  # buffers for the largest batch; a short last batch uses their first rows
        buffers = [np.empty((B, m), dtype) for m in (W1.shape[0], W1.shape[1], W1.shape[1], W2.shape[1],
                                                     W2.shape[1], W3.shape[1])]
        inv255 = dtype.type(1 / 255)
        tiny = np.finfo(dtype).tiny
        losses = np.empty(len(lrs))
        for k, lr in enumerate(lrs):
            rows = order[k * B:(k + 1) * B]
            n = len(rows)
            # X, a1, z2/a2 ... name the rows of this batch; z1 and z2 are overwritten
            # by a1 and a2, and z3 becomes p, then dz3 (each buffer reused in place)
            X, a1, da1, a2, da2, z3 = (buffer[:n] for buffer in buffers)
            y = labels[rows]
            np.multiply(images[rows], inv255, out=X)  # uint8 pixels to [0, 1]
            # forward: z = a @ W + b, then relu in place (a1 = relu(z1), a2 = relu(z2))
            relu_forward(linear_forward(X, W1, b1, out=a1), out=a1)
            relu_forward(linear_forward(a1, W2, b2, out=a2), out=a2)
            linear_forward(a2, W3, b3, out=z3)
            losses[k] = softmax_cross_entropy_inplace(z3, y)  # z3 is now dz3 = (p - Y) / n
            dz3 = z3
            # backward, layer by layer (relu'(z) = [a > 0])
            linear_backward(a2, dz3, W3, dW3, db3, da2)
            dz2 = relu_backward(da2, a2, out=da2)
            linear_backward(a1, dz2, W2, dW2, db2, da1)
            dz1 = relu_backward(da1, a1, out=da1)
            linear_backward(X, dz1, None, dW1, db1)
            if mean is not None:  # centred inputs: the steps of the centred network
                center_gradients(views[2], mean)
            sgd_update(flat_w, flat_v, flat_g, lr, momentum)  # all six at once
            if momentum and k % FLUSH_EVERY == FLUSH_EVERY - 1:
                flat_v[np.abs(flat_v) < tiny] = 0
        for w, v, view_w, view_v in zip(params, velocity, views[0], views[1]):  # copy out
            w[...] = view_w
            v[...] = view_v
        return losses


def _views(flat, like):
    """Views into the 1-D ``flat`` with the shapes of the arrays in ``like``, in order."""
    views, start = [], 0
    for a in like:
        views.append(flat[start:start + a.size].reshape(a.shape))
        start += a.size
    return Params(*views)


BACKEND = NumpyBackend
