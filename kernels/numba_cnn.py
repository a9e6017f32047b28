"""The CNN's training step in compiled code: every layer on the tiles of :mod:`~.conv_tiles`,
the activations channels last from the first layer to the last, no copy in between.

The layer ops (:mod:`~.conv_numba`) take and return PyTorch's layout (n, C, H, W) and
so transpose on the way in and out; this step instead keeps each activation where the
next kernel reads it. One step, for a batch of n images (shapes per batch)::

    x1   (n, 32, 32)          the pixels / 255, padded by 2 (conv1's input rows, C = 1)
    z1   (n, 28, 28, 16)      conv1 = correlate(x1, W1) + b1
    a1   (n, 18, 18, 16)      relu, pool; padded by 2: conv2's input
    z2   (n, 14, 14, 32)      conv2
    a2   (n, 32, 7, 7)        relu, pool, channels first: flattened, PyTorch's order
    z3, a3  (n, 128)          dense3, relu        z4 (n, 10) dense4: the logits
    backward: dz4 = (p - Y) / n; dense4, relu3, dense3 (BLAS, as the MLP's dense layers);
    dz2  (n, 18, 18, 32)      da2 through pool2 and relu2, padded by 2 for conv2's dX
    dW2, db2 = weight_grads(a1, dz2)          da1 (n, 14, 14, 16) = correlate(dz2, W2 flipped)
    dz1  (n, 28, 28, 16)      da1 through pool1 and relu1
    dW1, db1 = weight_grads(x1, dz1)          (conv1's dX is never needed)
    then each parameter: v <- m v + g; w <- w - lr v (:func:`~.numba_layers.sgd_update`)

Its gradients are the layer-by-layer ones (the same kernels in the same order; a test
checks the bits), and as those, the same on any number of threads.
"""

import time
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from digitbench.networks import init_params

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .conv_tiles import block_weights, correlate, relu_pool, relu_pool_backward, unblock_weights, weight_grads
from .layer_pass import LayeredBackend
from .numba_layers import linear_backward, linear_backward_wide, linear_forward, relu_backward, relu_forward, sgd_step, \
    sgd_update, softmax_cross_entropy

#: The CNN's sizes that the buffers are made for (:data:`digitbench.networks.CNN`).
SIDE, PAD, KERNEL, C1, C2, HIDDEN, CLASSES = 28, 2, 5, 16, 32, 128, 10


class CnnWork(NamedTuple):
    """One step's buffers for n images (borders of the padded ones stay zero)."""

    x1: np.ndarray  # (n, 32, 32)
    z1: np.ndarray  # (n, 28, 28, 16)
    a1: np.ndarray  # (n, 18, 18, 16)
    z2: np.ndarray  # (n, 14, 14, 32)
    a2: np.ndarray  # (n, 32, 7, 7)
    z3: np.ndarray  # (n, 128)
    a3: np.ndarray  # (n, 128)
    z4: np.ndarray  # (n, 10)
    dz4: np.ndarray  # (n, 10)
    dz3: np.ndarray  # (n, 128)
    da2: np.ndarray  # (n, 1568)
    dz2: np.ndarray  # (n, 18, 18, 32)
    da1: np.ndarray  # (n, 14, 14, 16)
    dz1: np.ndarray  # (n, 28, 28, 16)
    W1b: np.ndarray  # (1, 5, 5, 16)    W1 blocked
    W2b: np.ndarray  # (2, 5, 80, 16)   W2 blocked
    W2f: np.ndarray  # (1, 5, 160, 16)  W2 flipped for dX, blocked
    dW1b: np.ndarray  # (1, 5, 5, 16)
    dW2b: np.ndarray  # (2, 5, 80, 16)
    W4T: np.ndarray  # (10, 128)
    zero: np.ndarray  # (16,) zeros: the bias of dX


def new_work(n, dtype):
    """Zeroed :class:`CnnWork` for n images of ``dtype``."""
    s1, s2, s3 = SIDE, SIDE // 2, SIDE // 4
    shapes = [(n, s1 + 2 * PAD, s1 + 2 * PAD), (n, s1, s1, C1), (n, s2 + 2 * PAD, s2 + 2 * PAD, C1), (n, s2, s2, C2),
              (n, C2, s3, s3), (n, HIDDEN), (n, HIDDEN), (n, CLASSES), (n, CLASSES), (n, HIDDEN),
              (n, C2 * s3 * s3), (n, s2 + 2 * PAD, s2 + 2 * PAD, C2), (n, s2, s2, C1), (n, s1, s1, C1),
              (1, KERNEL, KERNEL, 16), (2, KERNEL, KERNEL * C1, 16), (1, KERNEL, KERNEL * C2, 16),
              (1, KERNEL, KERNEL, 16), (2, KERNEL, KERNEL * C1, 16), (CLASSES, HIDDEN), (16,)]
    return CnnWork(*(np.zeros(shape, dtype) for shape in shapes))


@njit(cache=True)
def load_batch(images, rows, x1):
    """x1[i] inside its border = images[rows[i]] (uint8, 784 each) / 255, as 28 x 28."""
    t = x1.dtype.type
    for i in range(len(rows)):
        for r in range(SIDE):
            for s in range(SIDE):
                x1[i, r + PAD, s + PAD] = t(images[rows[i], r * SIDE + s]) / t(255)


@njit(cache=True)
def cnn_gradients(params, grads, work, y, threads):
    """The forward and backward passes of one batch (``work.x1`` filled): the gradients
    into ``grads``; returns the summed (not yet averaged) cross-entropy, float64."""
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    dW1, db1, dW2, db2, dW3, db3, dW4, db4 = grads
    x1, z1, a1, z2, a2, z3, a3, z4, dz4, dz3, da2, dz2, da1, dz1, W1b, W2b, W2f, dW1b, dW2b, W4T, zero = work
    n = x1.shape[0]
    block_weights(W1, False, W1b)
    block_weights(W2, False, W2b)
    block_weights(W2, True, W2f)
    correlate(x1, 1, W1b, b1, z1, threads)  # z1 = conv1(x)
    relu_pool(z1, a1, PAD, False, threads)  # a1 = pool(relu(z1)), padded for conv2
    a1_rows = a1.reshape(n, a1.shape[1], a1.shape[2] * C1)
    correlate(a1_rows, C1, W2b, b2, z2, threads)  # z2 = conv2(a1)
    relu_pool(z2, a2, 0, True, threads)  # a2 = pool(relu(z2)), channels first
    a2_flat = a2.reshape(n, a2.size // n)
    linear_forward(n, a2_flat, W3, b3, z3)  # z3 = a2 @ W3 + b3
    relu_forward(0, n, z3, a3)
    linear_forward(n, a3, W4, b4, z4)  # z4 = a3 @ W4 + b4: the logits
    loss = softmax_cross_entropy(n, y, z4, dz4)  # dz4 = (p - Y) / n
    linear_backward(n, a3, dz4, W4, W4T, dW4, db4, dz3)  # dW4, db4, da3
    relu_backward(n, z3, dz3)  # dz3 = da3 * relu'(z3)
    linear_backward_wide(n, a2_flat, dz3, W3, dW3, db3, da2)  # dW3, db3, da2
    relu_pool_backward(da2.reshape(n, C2, SIDE // 4, SIDE // 4), z2, dz2, PAD, True, threads)  # dz2
    weight_grads(a1_rows, C1, dz2, PAD, dW2b, db2, threads)  # dW2, db2
    dz2_rows = dz2.reshape(n, dz2.shape[1], dz2.shape[2] * C2)
    correlate(dz2_rows, C2, W2f, zero, da1, threads)  # da1 = dz2 correlated with W2 flipped
    relu_pool_backward(da1, z1, dz1, 0, False, threads)  # dz1
    weight_grads(x1, 1, dz1, 0, dW1b, db1, threads)  # dW1, db1
    unblock_weights(dW1b, dW1)
    unblock_weights(dW2b, dW2)
    return loss


@njit(parallel=True, cache=True)
def sgd_update_parts(w, v, g, lr, momentum, threads):
    """:func:`~.numba_layers.sgd_update` (the same rule, entry by entry, so the same bits)
    split into ``threads`` parts of the flattened arrays."""
    wf, vf, gf = w.reshape(-1), v.reshape(-1), g.reshape(-1)
    size = wf.shape[0]
    for part in prange(threads):
        for k in range(part * size // threads, (part + 1) * size // threads):
            wf[k], vf[k] = sgd_step(wf[k], vf[k], gf[k], lr, momentum)


@njit(cache=True)
def update_all(params, velocity, grads, lr, momentum, threads):
    """Each parameter's SGD step, in place: W3 (200,704 entries) split into parts."""
    sgd_update(params[0], velocity[0], grads[0], lr, momentum)
    sgd_update(params[1], velocity[1], grads[1], lr, momentum)
    sgd_update(params[2], velocity[2], grads[2], lr, momentum)
    sgd_update(params[3], velocity[3], grads[3], lr, momentum)
    sgd_update_parts(params[4], velocity[4], grads[4], lr, momentum, threads)
    sgd_update(params[5], velocity[5], grads[5], lr, momentum)
    sgd_update(params[6], velocity[6], grads[6], lr, momentum)
    sgd_update(params[7], velocity[7], grads[7], lr, momentum)


@njit(cache=True)
def cnn_train_batches(params, velocity, grads, work, last_work, images, labels, order, batch_size, lrs, momentum,
                      threads):
    """SGD steps over ``order`` (step k: rows k * batch_size onwards), in place; the loss of
    each step (float64). ``last_work`` holds the buffers of a last, shorter batch."""
    losses = np.empty(len(lrs))
    for k in range(len(lrs)):
        rows = order[k * batch_size:(k + 1) * batch_size]
        w = work if len(rows) == work.x1.shape[0] else last_work
        load_batch(images, rows, w.x1)
        y = np.empty(len(rows), np.int64)
        for i in range(len(rows)):
            y[i] = labels[rows[i]]
        losses[k] = cnn_gradients(params, grads, w, y, threads) / len(rows)
        update_all(params, velocity, grads, lrs[k], momentum, threads)
    return losses


class NumbaCnnBackend(LayeredBackend):
    """The numba backend for the CNN: layer ops for ``forward`` and ``loss_and_grads``, the
    compiled step of this module for training."""

    #: The dense layers multiply with BLAS on one thread (:mod:`digitbench.threads`).
    single_thread_blas_batch = float("inf")

    def new_workspace(self, batch_size, params):
        return {"dtype": params[0].dtype, "work": new_work(batch_size, params[0].dtype),
                "grads": type(params)(*(np.empty_like(p) for p in params)), "last": {}}

    def warmup(self, dtypes=(np.float32,)):
        """Compile (or load) the layer ops and the step for each of ``dtypes``."""
        start = time.perf_counter()
        super().warmup(dtypes)
        for dtype in dtypes:
            params = init_params(self.network, 0, dtype)
            velocity = type(params)(*(np.zeros_like(p) for p in params))
            images, labels = np.zeros((2, SIDE * SIDE), np.uint8), np.zeros(2, np.int64)
            self.train_batches(params, velocity, images, labels, np.arange(2), 2, np.zeros(1), 0.9)
        return time.perf_counter() - start

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """SGD steps as :meth:`Backend.train_batches`, in compiled code."""
        if mean is not None:
            raise ValueError(f"centred inputs are for the MLP; the {self.network.name} trains on the pixels")
        dtype = params[0].dtype
        if workspace is None or workspace["dtype"] != dtype or workspace["work"].x1.shape[0] != batch_size:
            workspace = self.new_workspace(batch_size, params)
        last = len(order) % batch_size
        last_work = workspace["work"] if last == 0 else workspace["last"].setdefault(last, new_work(last, dtype))
        order = np.ascontiguousarray(order, np.int64)
        return cnn_train_batches(tuple(params), tuple(velocity), tuple(workspace["grads"]), workspace["work"],
                                 last_work, images, np.ascontiguousarray(labels, np.int64), order, batch_size,
                                 np.ascontiguousarray(lrs, np.float64), float(momentum), threads)
