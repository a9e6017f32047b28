"""The layer ops of the convolutional network, as compiled Numba kernels.

Each public op checks its arguments (:mod:`~.layer_shapes`), allocates its outputs and
calls kernels that only fill them; the names, arguments and math are those of
:mod:`~.conv_naive`, plus ``threads``, the number of parts the work is split into
(the caller sets Numba's thread count; no kernel reads or changes it). Kernels are
compiled on first use for each dtype (float32 or float64) and cached on disk.

Convolutions run on the tiles of :mod:`~.conv_tiles` (channels last, blocked weights)
when their shapes fit them, as all of the CNN's do but conv1's dX (one output channel,
never needed in training), and otherwise on the plane kernels below, which compute
one (image, channel) plane at a time. The ops take and return PyTorch's layout
(n, C, H, W) and transpose on the way in and out; the training step
(:mod:`~.numba_cnn`) calls the tiles directly and keeps every activation channels last.
The dense ops are the MLP's kernels (:mod:`~.numba_layers`: BLAS for the products).

**The same bits on any number of threads.** Every output element is computed by
exactly one part, always in the same order; nothing is summed across parts, no
atomics, so the split (which depends on ``threads``) changes which thread computes a
value, never the value. FASTMATH = {"contract"} lets LLVM fuse ``a * b + c`` into one
FMA (one rounding instead of two), and nothing else (no reassociation).
"""

import numpy as np
from numba import njit, prange

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from . import numba_layers as layers
from .conv_tiles import BLOCK, block_weights, correlate, fits_tiles, fits_weight_tiles, unblock_weights, weight_grads
from .layer_shapes import (POOL, backward_padding, check_conv2d_backward, check_linear_backward, check_logits,
                           check_maxpool_backward, check_same_shape, conv2d_out_shape, flipped_kernel,
                           linear_out_shape, maxpool_out_shape)

FASTMATH = {"contract"}
#: The ops this module provides (:func:`digitbench.kernels.layer_ops.get_ops`); each
#: takes the keyword ``threads``.
OPS = ("conv2d_forward", "conv2d_backward", "maxpool_forward", "maxpool_backward")


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def correlate_kernel(Xp, W, b, Y, threads):
    """Y[i,o,r,s] = b[o] + sum_{c,u,v} Xp[i, c, r+u, s+v] W[o, c, u, v]; Xp already padded.

    Split by the n*O planes (i, o); each plane sums c, then u, then v, in order.
    """
    n, C = Xp.shape[0], Xp.shape[1]
    O, kh, kw = W.shape[0], W.shape[2], W.shape[3]
    Ho, Wo = Y.shape[2], Y.shape[3]
    planes = n * O
    for part in prange(threads):
        for t in range(part * planes // threads, (part + 1) * planes // threads):
            i, o = t // O, t % O
            out = Y[i, o]
            for r in range(Ho):
                for s in range(Wo):
                    out[r, s] = b[o]
            for c in range(C):
                x = Xp[i, c]
                for u in range(kh):
                    for v in range(kw):
                        w = W[o, c, u, v]
                        for r in range(Ho):
                            for s in range(Wo):
                                out[r, s] += w * x[r + u, s + v]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def weight_grad_kernel(dYt, Xp, dWt, db, threads):
    """dW[o,c,u,v] = sum_{i,r,s} dY[i,o,r,s] Xp[i, c, r+u, s+v]; db[o] = sum_{i,r,s} dY[i,o,r,s].

    ``dYt`` is dY channels-last (n, Ho, Wo, O), ``dWt`` is dW as (C, kh, kw, O): the
    innermost loop runs over o. Split by input channel c; every sum runs over the images
    in order 0..n-1, then rows r, then columns s. db is summed by the first part alone.
    """
    n, Ho, Wo, O = dYt.shape
    C, kh, kw = Xp.shape[1], dWt.shape[1], dWt.shape[2]
    for part in prange(threads):
        if part == 0:
            db[:] = 0
            for i in range(n):
                for r in range(Ho):
                    for s in range(Wo):
                        for o in range(O):
                            db[o] += dYt[i, r, s, o]
        for c in range(part * C // threads, (part + 1) * C // threads):
            dWt[c] = 0
            for i in range(n):
                for r in range(Ho):
                    for s in range(Wo):
                        g = dYt[i, r, s]
                        for u in range(kh):
                            for v in range(kw):
                                x, w = Xp[i, c, r + u, s + v], dWt[c, u, v]
                                for o in range(O):
                                    w[o] += x * g[o]


def padded(X, p):
    """X (n, C, H, W_) with p zeros on every side, C-contiguous."""
    return np.ascontiguousarray(np.pad(X, ((0, 0), (0, 0), (p, p), (p, p))) if p else X)


def channels_last_rows(X, p, dtype):
    """X (n, C, H, W_) as the rows of its channels-last copy padded by p:
    (n, H + 2p, (W_ + 2p) C), C-contiguous (:mod:`~.conv_tiles`'s input rows)."""
    n, C, H, W_ = X.shape
    Xp = np.zeros((n, H + 2 * p, W_ + 2 * p, C), dtype)
    Xp[:, p:p + H, p:p + W_] = np.asarray(X).transpose(0, 2, 3, 1)
    return Xp.reshape(n, H + 2 * p, (W_ + 2 * p) * C)


def blocked(W, flip=False):
    """W (O, C, kh, kw) blocked for the tiles (:func:`~.conv_tiles.block_weights`)."""
    O, C, kh, kw = W.shape
    out = (C if flip else O, kh, kw * (O if flip else C))
    Wb = np.empty((out[0] // BLOCK, *out[1:], BLOCK), W.dtype)
    block_weights(np.ascontiguousarray(W), flip, Wb)
    return Wb


def conv2d_forward(X, W, b, padding, threads=1):
    """Y[i,o,r,s] = b[o] + sum_{c,u,v} X[i, c, r+u-p, s+v-p] W[o, c, u, v] (zero outside X).

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W_)
    W : ndarray of shape (O, C, kh, kw)
    b : ndarray of shape (O,)
    padding : int
    threads : int, parts of the parallel loop

    Returns
    -------
    Y : ndarray of shape (n, O, Ho, Wo), W's dtype
    """
    shape = conv2d_out_shape("conv2d_forward", X, W, b, padding)
    b = np.ascontiguousarray(b, W.dtype)
    if fits_tiles(*shape[1:]):
        Y = np.empty((shape[0], *shape[2:], shape[1]), W.dtype)  # channels last
        correlate(channels_last_rows(X, padding, W.dtype), X.shape[1], blocked(W), b, Y, threads)
        return np.ascontiguousarray(Y.transpose(0, 3, 1, 2))
    Y = np.empty(shape, W.dtype)
    correlate_kernel(padded(np.asarray(X, W.dtype), padding), np.ascontiguousarray(W), b, Y, threads)
    return Y


def conv2d_backward(dY, X, W, padding, threads=1):
    """dX, dW, db of a convolution (the math: :func:`.conv_naive.conv2d_backward`).

    dX is the forward correlation again: dY padded by kh-1-p, correlated with the
    flipped kernel. Returns dX (n, C, H, W_), dW (O, C, kh, kw), db (O,), W's dtype.
    """
    check_conv2d_backward("conv2d_backward", dY, X, W, padding)
    dY = np.asarray(dY, W.dtype)
    O, C, kh, kw = W.shape
    db = np.empty(O, W.dtype)
    if fits_weight_tiles(O, kw * C):
        dWb = np.empty((O // BLOCK, kh, kw * C, BLOCK), W.dtype)
        dY_last = np.ascontiguousarray(dY.transpose(0, 2, 3, 1))
        weight_grads(channels_last_rows(X, padding, W.dtype), C, dY_last, 0, dWb, db, threads)
        dW = np.empty(W.shape, W.dtype)
        unblock_weights(dWb, dW)
    else:
        dYt = np.ascontiguousarray(dY.transpose(0, 2, 3, 1))  # (n, Ho, Wo, O)
        dWt = np.empty(W.shape[1:] + W.shape[:1], W.dtype)
        weight_grad_kernel(dYt, padded(np.asarray(X, W.dtype), padding), dWt, db, threads)
        dW = np.ascontiguousarray(dWt.transpose(3, 0, 1, 2))
    q = backward_padding(W, padding)
    if fits_tiles(C, X.shape[2], X.shape[3]):
        dX = np.empty((X.shape[0], X.shape[2], X.shape[3], C), W.dtype)
        correlate(channels_last_rows(dY, q, W.dtype), O, blocked(W, flip=True), np.zeros(C, W.dtype), dX, threads)
        dX = np.ascontiguousarray(dX.transpose(0, 3, 1, 2))
    else:
        dX = conv2d_forward(dY, flipped_kernel(W), np.zeros(C, W.dtype), q, threads)
    return dX, dW, db


@njit(cache=True, inline="always")
def winner(plane, r, s):
    """(u, v) of the largest value of the 2x2 window (r, s): the first in row-major order."""
    best, bu, bv = plane[POOL * r, POOL * s], 0, 0
    for u in range(POOL):
        for v in range(POOL):
            if plane[POOL * r + u, POOL * s + v] > best:  # strictly greater: ties stay with the first
                best, bu, bv = plane[POOL * r + u, POOL * s + v], u, v
    return bu, bv


@njit(parallel=True, cache=True)
def maxpool_kernel(X, Y, threads):
    """Y[i,c,r,s] = X at the winner of window (r, s); split by the n*C planes (i, c)."""
    n, C, Ho, Wo = Y.shape
    for part in prange(threads):
        for t in range(part * n * C // threads, (part + 1) * n * C // threads):
            x = X[t // C, t % C]
            for r in range(Ho):
                for s in range(Wo):
                    u, v = winner(x, r, s)
                    Y[t // C, t % C, r, s] = x[POOL * r + u, POOL * s + v]


@njit(parallel=True, cache=True)
def maxpool_backward_kernel(dY, X, dX, threads):
    """dX (zeros) = dY[i,c,r,s] at the winner of each window; split by the planes (i, c)."""
    n, C, Ho, Wo = dY.shape
    for part in prange(threads):
        for t in range(part * n * C // threads, (part + 1) * n * C // threads):
            x = X[t // C, t % C]
            for r in range(Ho):
                for s in range(Wo):
                    u, v = winner(x, r, s)
                    dX[t // C, t % C, POOL * r + u, POOL * s + v] = dY[t // C, t % C, r, s]


def maxpool_forward(X, threads=1):
    """Y[i,c,r,s] = max of the 2x2 window X[i, c, 2r:2r+2, 2s:2s+2]: (n, C, H/2, W_/2)."""
    X = np.ascontiguousarray(X)
    Y = np.empty(maxpool_out_shape("maxpool_forward", X), X.dtype)
    maxpool_kernel(X, Y, threads)
    return Y


def maxpool_backward(dY, X, threads=1):
    """dX (n, C, H, W_): each window's gradient to its winner (first maximum), zero elsewhere."""
    check_maxpool_backward("maxpool_backward", dY, X)
    X = np.ascontiguousarray(X)
    dX = np.zeros_like(X)
    maxpool_backward_kernel(np.ascontiguousarray(dY, X.dtype), X, dX, threads)
    return dX


# --- Dense ops, ReLU and softmax: the MLP's kernels (numba_layers), behind the layer-op arguments ---

#: Dense layers with more inputs than this multiply by W's transposed view in the
#: backward pass (:func:`~.numba_layers.linear_backward_wide`), smaller ones by a copy.
WIDE = 256

OPS += ("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_forward",
        "softmax_cross_entropy")


def linear_forward(A, W, b, threads=1):
    """Z = A @ W + b: A (n, K), W (K, M), b (M,) -> Z (n, M), W's dtype."""
    Z = np.empty(linear_out_shape("linear_forward", A, W, b), W.dtype)
    layers.linear_forward(len(Z), np.ascontiguousarray(A, W.dtype), np.ascontiguousarray(W),
                          np.ascontiguousarray(b, W.dtype), Z)
    return Z


def linear_backward(dZ, A, W, threads=1):
    """dA = dZ @ W.T (n, K), dW = A.T @ dZ (K, M), db = sum of dZ's rows (M,)."""
    check_linear_backward("linear_backward", dZ, A, W)
    A = np.ascontiguousarray(A, W.dtype)
    dA, dW, db = np.empty_like(A), np.empty_like(W), np.empty(W.shape[1], W.dtype)
    dZ, W = np.ascontiguousarray(dZ, W.dtype), np.ascontiguousarray(W)
    if W.shape[0] > WIDE:  # the CNN's dense3, as its training step multiplies
        layers.linear_backward_wide(len(A), A, dZ, W, dW, db, dA)
    else:
        layers.linear_backward(len(A), A, dZ, W, np.empty(W.shape[::-1], W.dtype), dW, db, dA)
    return dA, dW, db


@njit(cache=True)
def relu_kernel(Z, A):
    """A = max(Z, 0) on (n, m) arrays (:func:`~.numba_layers.relu_forward`)."""
    layers.relu_forward(0, len(Z), Z, A)


@njit(cache=True)
def relu_backward_kernel(Z, dZ):
    """dZ (holding dA) *= relu'(Z), in place, on (n, m) arrays (:func:`~.numba_layers.relu_backward`)."""
    layers.relu_backward(len(Z), Z, dZ)


def relu_forward(Z, threads=1):
    """max(Z, 0), elementwise, any shape (a NaN stays NaN)."""
    Z = np.ascontiguousarray(Z)
    out = np.empty_like(Z)
    relu_kernel(Z.reshape(len(Z), -1), out.reshape(len(Z), -1))
    return out


def relu_backward(dA, Z, threads=1):
    """dZ = dA where Z > 0, else 0."""
    check_same_shape("relu_backward", dA, Z)
    Z = np.ascontiguousarray(Z)
    out = np.array(dA, dtype=Z.dtype, order="C")
    relu_backward_kernel(Z.reshape(len(Z), -1), out.reshape(len(Z), -1))
    return out


def softmax_forward(Z, threads=1):
    """Row-wise softmax of Z (n, k)."""
    check_logits("softmax_forward", Z)
    Z = np.ascontiguousarray(Z)
    P = np.empty_like(Z)
    layers.softmax_rows(0, len(Z), Z, P)
    return P


def softmax_cross_entropy(Z, y, threads=1):
    """Mean cross-entropy of the logits Z (n, k) for labels y (n,), and dZ = (P - Y) / n."""
    check_logits("softmax_cross_entropy", Z, y)
    Z = np.ascontiguousarray(Z)
    dZ = np.empty_like(Z)
    loss = layers.softmax_cross_entropy(len(Z), np.ascontiguousarray(y, np.int64), Z, dZ)
    return float(loss / len(Z)), dZ
