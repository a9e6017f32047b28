"""The numba backend's training loop: whole chunks of SGD steps in one compiled call.

:func:`train_steps` runs ``len(lrs)`` steps of :meth:`Backend.train_batches
<digitbench.kernels.base.Backend.train_batches>` (``v <- m v + g; w <- w - lr v``) on
the parameters in place. Each step gathers its rows straight from the uint8 images
(:func:`~digitbench.kernels.numba_sparse.sparse_from_uint8`); the buffers come in a
:class:`Workspace` that the training run keeps from call to call.

Threads: ``threads`` parts (a value from the caller, who holds numba's thread count at
it), in three parallel regions per step, each its own ``parallel=True`` function:

1. layer 1's samples split into as many parts as threads;
2. step k's dense layers, backward pass and the updates of b1, W2, b2, W3, b3
   (:func:`dense_step`) beside the gathering of batch k + 1's pixels by sample (CSR),
   which needs nothing from step k, and the touching of batch k + 2's rows of images,
   which brings them into cache for the next step's gathering (:func:`touch_rows`);
   then each of the two sorts half of batch k's pixels by column (CSC, for region 3:
   :func:`~digitbench.kernels.numba_sparse.csc_of_pixels`), which evens the two out;
3. W1's rows, updated in :func:`row_parts` ranges (at least one per thread).

No value is ever summed across threads: each sample of z1, each row of W1 is one
thread's work, done in the same order whatever the thread count. So the same inputs
give the same bits on 1, 2 or any number of threads (tests/test_numba_threads.py). A
batch of 64 is little work, so each region is short and numba's light OpenMP layer is
what makes this pay; on cores busy with other work it does not, which
:mod:`digitbench.thread_chooser` detects.
"""

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from digitbench.params import Params

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .denormals import flush_subnormals_on, mxcsr_restore
from .numba_layers import (Acts, dense_backward, dense_forward, linear_forward_sparse, new_acts, sgd_update,
                           sgd_update_sparse)
from .numba_sparse import Sparse, csc_of_pixels, dot_rows, new_sparse, sparse_from_uint8, touch_rows

#: W1's 784 rows are updated in at least this many ranges (more with more threads).
ROW_PARTS = 8


class Images(NamedTuple):
    """The training images and labels, as :func:`train_steps` reads them."""

    images: np.ndarray  # (N, 784) uint8, read-only
    words: np.ndarray  # (N, 98) uint64: the same memory, 8 pixels a word (all-black words skipped)
    table: np.ndarray  # (256,) float: table[v] = v / 255 in the parameters' dtype
    labels: np.ndarray  # (N,) int64


class StepBuffers(NamedTuple):
    """One step's arrays besides the pixels, activations and gradients, for batches of
    up to B samples (arrays only: numba's parallel regions take no tuple in a tuple)."""

    yb: np.ndarray  # (B,) int64, the batch's labels
    step_loss: np.ndarray  # (1,) float64, the batch's summed loss
    touched: np.ndarray  # (1,) uint64, what :func:`touch_rows` read (kept so the reads stay)
    x_dot_mean: np.ndarray  # (B,) float64, x_i . mean for each sample (centred inputs only)
    dz1_sum: np.ndarray  # (128,) sum_i dz1_i, before db1 becomes the centred step (centred only)
    db1_total: np.ndarray  # (128,) float64, the centred step's db1 while it is summed (centred only)


class Workspace(NamedTuple):
    """The buffers of :func:`train_steps` for batches of up to B samples, reused across calls."""

    sp: Sparse  # this batch's non-zero pixels
    next_sp: Sparse  # the next batch's, gathered while this one is computed
    acts: Acts
    grads: Params  # grads.W1 is (0, 128): dW1 never exists, it is fused into W1's update
    step: StepBuffers


@njit(cache=True)
def new_workspace(B, params):
    """A :class:`Workspace` for batches of up to B samples and parameters like ``params``."""
    W1 = params.W1
    dt = W1.dtype
    D, H1, H2, K = W1.shape[0], W1.shape[1], params.W2.shape[1], params.W3.shape[1]
    grads = Params(np.empty((0, H1), dt), np.empty_like(params.b1), np.empty_like(params.W2),
                   np.empty_like(params.b2), np.empty_like(params.W3), np.empty_like(params.b3))
    step = StepBuffers(np.empty(B, np.int64), np.zeros(1), np.zeros(1, np.uint64), np.empty(B), np.empty(H1, dt),
                       np.empty(H1))
    return Workspace(new_sparse(B, D, dt), new_sparse(B, D, dt), new_acts(B, H1, H2, K, dt), grads, step)


@njit(cache=True)
def row_parts(threads):
    """Ranges of W1's rows for ``threads`` threads: a multiple of them, at least ROW_PARTS."""
    return threads * ((ROW_PARTS + threads - 1) // threads)


@njit(cache=True)
def train_steps(params, velocity, data, order, batch_size, lrs, momentum, losses, threads, work, mean):
    """Run len(lrs) SGD steps in place; fill ``losses`` (steps,) float64 with each batch's mean loss.

    Parameters
    ----------
    params, velocity : Params of the parameters' dtype, updated in place
    data : Images
    order : ndarray of shape (m,), int64; step k uses rows ``order[k * batch_size:][:batch_size]``
    batch_size : int
    lrs : ndarray of shape (steps,), float64
    momentum : float of the parameters' dtype; 0 is plain SGD
    losses : ndarray of shape (steps,), float64, filled
    threads : int, parts of the parallel regions (the results do not depend on it)
    work : Workspace for batches of ``batch_size`` (:func:`new_workspace`), overwritten
    mean : ndarray of shape (784,) of the parameters' dtype: train as on centred inputs
        ``x - mean`` (:func:`digitbench.kernels.base.center_gradients`); or of shape (0,): not
    """
    W1 = params.W1
    dt = W1.dtype
    B = batch_size
    steps = lrs.shape[0]
    sp, next_sp, acts, grads, buf = work
    yb, step_loss, touched = buf.yb, buf.step_loss, buf.touched
    one_plus_mean_sq = 1.0 + np.sum(mean.astype(np.float64) ** 2)  # 1 + mean . mean
    if steps > 0:  # the first batch's CSR (its CSC is sorted in region 2, as every batch's)
        sparse_from_uint8(data.images, data.words, order[0:min(B, order.shape[0])], data.table, sp, False)
        touched[0] ^= touch_rows(data.words, order[min(B, order.shape[0]):min(2 * B, order.shape[0])])
    for step in range(steps):
        start = step * B
        n = min(start + B, order.shape[0]) - start
        lr = dt.type(lrs[step])
        layer1_in_parts(n, threads, sp, W1, params.b1, acts.z1, mean, buf.x_dot_mean)  # 1.
        rows = order[start:start + n]
        for i in range(n):
            yb[i] = data.labels[rows[i]]
        nxt = order[min(start + B, order.shape[0]):min(start + 2 * B, order.shape[0])]
        after = order[min(start + 2 * B, order.shape[0]):min(start + 3 * B, order.shape[0])]
        if step + 1 == steps:
            nxt = nxt[:0]
        dense_beside_gathering(n, params, velocity, acts, grads, lr, momentum, mean, one_plus_mean_sq, data, nxt,
                               after, sp, next_sp, buf)  # 2.
        losses[step] = step_loss[0] / n
        update_W1_in_parts(row_parts(threads), sp, acts.dz1, W1, velocity.W1, lr, momentum, mean, buf.dz1_sum)  # 3.
        sp, next_sp = next_sp, sp


@njit(cache=True, parallel=True)
def layer1_in_parts(n, threads, sp, W1, b1, z1, mean, x_dot_mean):
    """Region 1: z1 = X @ W1 + b1 for n samples, split into ``threads`` parts by samples
    (and x_i . mean for each sample, for centred inputs)."""
    for part in prange(threads):
        first, last = part * n // threads, (part + 1) * n // threads
        linear_forward_sparse(first, last, sp, W1, b1, z1)
        if mean.shape[0] > 0:
            dot_rows(first, last, sp, mean, x_dot_mean)


@njit(cache=True, parallel=True)
def dense_beside_gathering(n, params, velocity, acts, grads, lr, momentum, mean, one_plus_mean_sq, data, nxt, after,
                           sp, next_sp, buf):
    """Region 2, two tasks. One: :func:`dense_step` (its summed loss into
    ``buf.step_loss[0]``), then the CSC entries of this batch's (``sp``) pixels below
    the middle one. Other: the next batch's pixels (rows ``nxt``, if any) into
    ``next_sp`` by sample (CSR), the touching of the rows ``after`` it (into cache),
    then the CSC entries of this batch's other pixels."""
    D = data.images.shape[1]
    for task in prange(2):
        saved_mxcsr = flush_subnormals_on()  # per thread (see denormals.py)
        if task == 0:
            buf.step_loss[0] = dense_step(n, params, velocity, acts, grads, lr, momentum, mean, one_plus_mean_sq, buf)
            csc_of_pixels(n, sp, 0, D // 2)
        else:
            if nxt.shape[0] > 0:
                sparse_from_uint8(data.images, data.words, nxt, data.table, next_sp, False)
                buf.touched[0] ^= touch_rows(data.words, after)
            csc_of_pixels(n, sp, D // 2, D)
        mxcsr_restore(saved_mxcsr)


@njit(cache=True, parallel=True)
def update_W1_in_parts(parts, sp, dz1, W1, V1, lr, momentum, mean, dz1_sum):
    """Region 3: W1's update (fused with dW1 = X.T @ dz1, minus mean^T dz1_sum for centred
    inputs), its rows split into ``parts`` ranges."""
    D = W1.shape[0]
    for part in prange(parts):
        saved_mxcsr = flush_subnormals_on()
        first, last = part * D // parts, (part + 1) * D // parts
        sgd_update_sparse(sp, dz1, W1, V1, lr, momentum, first, last, mean, dz1_sum)
        mxcsr_restore(saved_mxcsr)


@njit(cache=True)
def dense_step(n, params, velocity, acts, grads, lr, momentum, mean, one_plus_mean_sq, buf):
    """One step's forward pass after layer 1 (acts.z1 filled), its backward pass and the
    SGD updates of all but W1, for the n samples whose labels are in buf.yb
    (:class:`StepBuffers`). Returns the batch's summed loss; leaves acts.dz1 (n, 128) for
    W1's update (and, for centred inputs, its column sums in buf.dz1_sum).

    Centred inputs: db1 becomes db1 - mean @ dW1' (:func:`~digitbench.kernels.base.center_gradients`)
    with dW1' = X.T @ dz1 - mean^T db1, that is sum_i (1 + mean . mean - x_i . mean) dz1_i,
    summed in float64 (the two terms nearly cancel).
    """
    x_dot_mean, dz1_sum, db1_total = buf.x_dot_mean, buf.dz1_sum, buf.db1_total
    dense_forward(n, params, acts)
    loss = dense_backward(n, buf.yb, params, acts, grads)
    if mean.shape[0] > 0:
        db1, dz1 = grads.b1, acts.dz1
        dz1_sum[:] = db1
        db1_total[:] = 0  # float64; sample by sample, so that h is the inner loop
        for i in range(n):
            c = one_plus_mean_sq - x_dot_mean[i]
            for h in range(db1.shape[0]):
                db1_total[h] += c * dz1[i, h]
        db1[:] = db1_total
    sgd_update(params.b1, velocity.b1, grads.b1, lr, momentum)
    sgd_update(params.W2, velocity.W2, grads.W2, lr, momentum)
    sgd_update(params.b2, velocity.b2, grads.b2, lr, momentum)
    sgd_update(params.W3, velocity.W3, grads.W3, lr, momentum)
    sgd_update(params.b3, velocity.b3, grads.b3, lr, momentum)
    return loss
