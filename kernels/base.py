"""The interface every backend implements, and the parts they share.

Shapes (row-major, one sample per row; ``n`` is the batch size)::

    X   (n, 784)  pixels in [0, 1]          y   (n,)  integer labels 0..9
    W1  (784, 128)   b1 (128,)   z1, a1 (n, 128)   a1 = relu(z1),  z1 = X  @ W1 + b1
    W2  (128, 64)    b2 (64,)    z2, a2 (n, 64)    a2 = relu(z2),  z2 = a1 @ W2 + b2
    W3  (64, 10)     b3 (10,)    z3, p  (n, 10)    p = softmax(z3), z3 = a2 @ W3 + b3
    loss = mean over the batch of -log p[i, y[i]]

Gradients come back as a ``Params`` of the same shapes (``dW1, db1, ...``). The
backends use these very names, so that they can be read side by side.

Training runs through :meth:`Backend.train_batches`: plain mini-batch SGD with
optional heavy-ball momentum (PyTorch's convention), each backend's ``sgd_update``
(here :func:`sgd_update`)::

    v <- momentum * v + g          (v is the velocity, one array per parameter)
    w <- w - lr * v                (with momentum = 0 this is w <- w - lr * g)

A backend may override it to keep the whole loop in compiled code.

Threads are a value: ``threads`` (the parts of a backend's parallel loops) is an
argument of ``forward``, ``predict_proba``, ``predict`` and ``train_batches``. No
backend reads or sets a process-wide thread count; :mod:`digitbench.threads` holds the
pools at the count, and what belongs to one training run (the thread chooser, the
workspace) lives in its :class:`digitbench.threads.RunThreads`, not on the backend.

Centred inputs (``mean`` given, the recipe's ``center``): the network is trained as if
its input were ``x - mean`` (the training set's mean image), which gives SGD a better
conditioned problem (LeCun et al., "Efficient BackProp", 1998: inputs of mean zero),
but the parameters stay those of the network on the raw pixels, so that the pixels
stay sparse and a trained model needs no extra step. With ``c = b1 + mean @ W1`` the
bias of the centred network (``x W1 + b1 = (x - mean) W1 + c``), a step on
(W1, c) is a step on (W1, b1) with the gradients of :func:`center_gradients`.
"""

import functools
from typing import Protocol, runtime_checkable

import numpy as np

from digitbench.pixels import scale_pixels


def center_gradients(grads, mean):
    """In place: turn the gradients of the raw-pixel network into the steps of the
    centred one, written for the raw parameters (W1, b1).

    The centred network ``z1 = (x - mean) W1 + c`` has the gradients

        dW1' = sum_i (x_i - mean)^T dz1_i = dW1 - mean^T db1      (an outer product)
        dc   = sum_i dz1_i                = db1

    and b1 = c - mean @ W1 moves by dc - mean @ dW1' when (c, W1) move by (dc, dW1'),
    so b1's step is ``db1' = db1 - mean @ dW1'``. Momentum is linear, so the same holds
    for the velocities (v_b1 = v_c - mean @ v_W1).

    Parameters
    ----------
    grads : Params (dW1 (784, 128), db1 (128,), ...), dW1 and db1 overwritten
    mean : ndarray of shape (784,), the training set's mean image in [0, 1]
    """
    dW1, db1 = grads.W1, grads.b1
    dW1 -= np.outer(mean, db1).astype(dW1.dtype)
    db1 -= (mean @ dW1).astype(db1.dtype)


def center_start(params, mean):
    """The raw-pixel parameters of a centred network whose first bias c is ``params.b1``:
    b1 = c - mean @ W1 (a new Params; ``init_params`` gives c = 0)."""
    W1 = params.W1
    return params._replace(b1=(params.b1 - mean.astype(W1.dtype) @ W1).astype(W1.dtype))


def sgd_update(w, v, g, lr, momentum):
    """In place: ``v <- momentum * v + g; w <- w - lr * v`` (``w <- w - lr * g`` when
    momentum = 0), whole arrays at once.

    Parameters
    ----------
    w, v, g : ndarrays of one shape and dtype: the parameter, its velocity, its gradient
        (``g`` is overwritten: it holds ``lr * v`` afterwards)
    lr, momentum : floats
    """
    t = w.dtype.type
    step = g
    if momentum:
        v *= t(momentum)
        v += g
        step = v
    np.multiply(step, t(lr), out=g)
    w -= g


#: Rows per call of ``forward`` in :meth:`Backend.predict_proba` and :meth:`Backend.predict`.
PREDICT_CHUNK = 2000


def labels_of(logits):
    """The class of each row of ``logits`` (n, 10): its arg-max, int64 of shape (n,); the
    first of equal largest values. One rule for every backend, ``evaluate`` and ``predict``."""
    return np.argmax(logits, axis=1).astype(np.int64)


def settle_ties(backend, params, X, p, labels):
    """``labels`` (n,), the arg-max of the probabilities ``p`` (n, 10), made the arg-max of
    the logits, in place; returns them.

    The softmax orders the probabilities as the logits, but rounds close logits to
    equal probabilities (a last layer scaled by 1e-8 gives ten of 0.1 in float32):
    rows whose largest probability is shared are decided by ``backend.logits``.
    """
    tied = np.flatnonzero((p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1)
    if len(tied):
        labels[tied] = labels_of(backend.logits(params, np.asarray(X)[tied]))
    return labels


def as_input(params, X):
    """``X`` as the network's input: uint8 pixels are scaled to ``params``' dtype in [0, 1]
    (:func:`digitbench.pixels.scale_pixels`); floats are passed through as they are."""
    X = np.asarray(X)
    return scale_pixels(X, params.W1.dtype) if X.dtype == np.uint8 else X


def _scaling_uint8(method):
    """Wrap ``forward`` or ``loss_and_grads`` so that uint8 input is scaled first."""

    @functools.wraps(method)
    def wrapper(self, params, X, *args, **kwargs):
        return method(self, params, as_input(params, X), *args, **kwargs)

    wrapper.scales_uint8 = True
    return wrapper


class Backend:
    """Base class and protocol: what every backend has, and what a caller may use.

    A backend writes ``forward`` and ``loss_and_grads`` (and may override
    ``train_batches``, ``warmup`` and ``steps_per_call``); every caller uses exactly the
    names below, without probing for others.

    Input. ``X`` is a batch of shape (n, 784): floats in [0, 1] of the parameters'
    dtype, or uint8 pixels (0..255), which ``forward``, ``loss_and_grads``,
    ``predict_proba`` and ``predict`` scale with :func:`digitbench.pixels.scale_pixels`
    first, in every backend alike (a subclass's ``forward`` and ``loss_and_grads`` are
    wrapped to do so when the class is defined).
    """

    #: Name in the registry ("naive", "numpy", "numba").
    name = "base"
    #: Whether the same inputs always give bit-identical results.
    deterministic = True
    #: The most SGD steps one ``train_batches`` call should get (int), or None for any
    #: number. The trainer and ``bench`` cut their chunks to it (the naive backend: 1).
    steps_per_call = None
    #: Whether ``forward`` and ``train_batches`` split their work into ``threads`` parts
    #: run on numba's threads (the caller holds numba's count: :mod:`digitbench.threads`).
    parallel = False
    #: Batches up to this size train with BLAS on one thread (the caller enters
    #: :func:`digitbench.threads.blas_single_thread`); 0: never.
    single_thread_blas_batch = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "logits", "loss_and_grads"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "scales_uint8", False):
                setattr(cls, name, _scaling_uint8(method))

    def warmup(self, dtypes=(np.float32,)):
        """Compile or load whatever the backend needs for ``dtypes``, before any timing.

        Returns the seconds it took. The default does nothing and returns 0.0.
        """
        return 0.0

    def forward(self, params, X, threads=1):
        """Probabilities of shape (n, 10) for ``X`` of shape (n, 784), on ``threads`` parts."""
        raise NotImplementedError

    def logits(self, params, X):
        """Logits z3 of shape (n, 10) for ``X`` of shape (n, 784): the outputs before the softmax."""
        raise NotImplementedError

    def loss_and_grads(self, params, X, y):
        """(mean cross-entropy as a float, gradients as Params) for one batch."""
        raise NotImplementedError

    def predict_proba(self, params, X, chunk=PREDICT_CHUNK, threads=1):
        """Probabilities (n, 10) in the parameters' dtype, ``chunk`` rows per ``forward``.

        uint8 rows are scaled chunk by chunk, so no float copy of all of ``X`` is made.
        """
        out = np.empty((len(X), 10), dtype=params.W1.dtype)
        for start in range(0, len(X), chunk):
            out[start:start + chunk] = self.forward(params, X[start:start + chunk], threads=threads)
        return out

    def predict(self, params, X, chunk=PREDICT_CHUNK, threads=1):
        """Predicted labels (n,) as int64: the arg-max of each row's logits (:func:`settle_ties`)."""
        p = self.predict_proba(params, X, chunk, threads)
        return settle_ties(self, params, X, p, np.argmax(p, axis=1).astype(np.int64))

    def new_workspace(self, batch_size, params):
        """Buffers ``train_batches`` may reuse across calls of one run (``workspace=``), or
        None for a backend that keeps none. The caller owns them (:class:`digitbench.threads.RunThreads`)."""
        return None

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """Run ``len(lrs)`` SGD steps in place; return the loss of each, as float64.

        Parameters
        ----------
        params : Params, updated in place
        velocity : Params of the same shapes, updated in place (unused when momentum = 0)
        images : ndarray of shape (N, 784), uint8 pixels, scaled here to params' dtype
        labels : ndarray of shape (N,), integer labels
        order : ndarray of shape (m,), int64 row indices; step k uses
            ``order[k * batch_size:(k + 1) * batch_size]`` (the last batch may be short)
        batch_size : int
        lrs : ndarray of shape (steps,), float64, the learning rate of each step
        momentum : float in [0, 1)
        mean : ndarray of shape (784,) in params' dtype, optional: train as on centred
            inputs ``x - mean`` (:func:`center_gradients`)
        threads : int, parts of the backend's parallel loops (results do not depend on it)
        workspace : the backend's :meth:`new_workspace` for this batch size, or None
        """
        dtype = params.W1.dtype
        losses = np.empty(len(lrs))
        for k, lr in enumerate(lrs):
            rows = order[k * batch_size:(k + 1) * batch_size]
            X = scale_pixels(images[rows], dtype)
            loss, grads = self.loss_and_grads(params, X, labels[rows])
            if mean is not None:
                center_gradients(grads, mean)
            losses[k] = loss
            for w, v, g in zip(params, velocity, grads):
                sgd_update(w, v, g, lr, momentum)
        return losses

    def __repr__(self):
        return f"<digitbench backend {self.name!r}>"


@runtime_checkable
class Contender(Protocol):
    """What ``digitbench bench`` times: a digitbench backend (``bench.BackendContender``)
    or a peer library (``digitbench.peers``), trained the same way.

    Attributes: ``name`` (str), ``kind`` ("digitbench" or "peer"), ``version`` (str or
    None), ``threads_note`` (str: how its threads are held), ``slow`` (bool: timed on
    fewer samples). Training uses :data:`digitbench.recipe.THROUGHPUT`'s learning rate
    and momentum.
    """

    name: str
    kind: str
    version: object
    threads_note: str
    slow: bool

    def prepare(self, data, batch_size, seed=0):
        """Keep the data, build the model and compile whatever is compiled, off the clock."""

    def reset(self, seed, mean=None):
        """Weights ``init_params(seed)``, momentum zero; with ``mean`` (784,), trained as on
        centred inputs ``x - mean`` until the next reset."""

    def train(self, order, lrs=None):
        """One SGD step per batch of the rows ``order``, one learning rate per step."""

    def weights(self):
        """The current weights as ``Params``."""

    def predict(self, X):
        """Predicted labels (n,) for X (n, 784) floats in [0, 1]."""
