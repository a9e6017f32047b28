"""The layer ops of the convolutional network, as compiled Numba kernels.

Each public op checks its arguments (:mod:`~.layer_shapes`), allocates its outputs and
calls a kernel that only fills them; the names, arguments and math are those of
:mod:`~.conv_naive`, plus ``threads``, the number of parts the work is split into
(the caller sets Numba's thread count; no kernel reads or changes it). Kernels are
compiled on first use for each dtype (float32 or float64) and cached on disk.

**The same bits on any number of threads.** Every output element is computed by
exactly one part, always in the same order: the forward and dX are split by images or
by (image, output channel) planes, dW by input channel (each sums over the images in
index order, 0 to n-1), db by one part, the dense dW by its rows. Nothing is summed
across parts, no atomics, so the split (which depends on ``threads``) changes which thread computes a
value, never the value. FASTMATH = {"contract"} lets LLVM fuse ``a * b + c`` into one
FMA (one rounding instead of two), and nothing else (no reassociation).
"""

import numpy as np
from numba import njit, prange

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .layer_shapes import (POOL, backward_padding, check_conv2d_backward, check_linear_backward, check_logits,
                           check_maxpool_backward, check_same_shape, conv2d_out_shape, flipped_kernel,
                           linear_out_shape, maxpool_out_shape)

FASTMATH = {"contract"}
#: Convolutions with at least this many input and output channels run the kernel that
#: vectorizes over output channels; the others (conv1, and conv1's dX) whole planes.
CHANNELS_MIN = 4
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
def correlate_channels_kernel(Xp, Wt, b, Y, threads):
    """The same sums as :func:`correlate_kernel`, in the same order (so the same bits),
    computed for all O output channels of a pixel at once: the innermost loop runs over
    o, contiguous in ``Wt`` (C, kh, kw, O), W transposed. Split by images."""
    n, C = Xp.shape[0], Xp.shape[1]
    kh, kw, O = Wt.shape[1], Wt.shape[2], Wt.shape[3]
    Ho, Wo = Y.shape[2], Y.shape[3]
    for part in prange(threads):
        acc = np.empty(O, Y.dtype)
        for i in range(part * n // threads, (part + 1) * n // threads):
            for r in range(Ho):
                for s in range(Wo):
                    acc[:] = b
                    for c in range(C):
                        for u in range(kh):
                            for v in range(kw):
                                x, w = Xp[i, c, r + u, s + v], Wt[c, u, v]
                                for o in range(O):
                                    acc[o] += x * w[o]
                    for o in range(O):
                        Y[i, o, r, s] = acc[o]


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
    Y = np.empty(shape, W.dtype)
    Xp, b = padded(np.asarray(X, W.dtype), padding), np.ascontiguousarray(b, W.dtype)
    O, C = W.shape[:2]
    if O >= CHANNELS_MIN and C >= CHANNELS_MIN:  # enough channels to vectorize over o
        correlate_channels_kernel(Xp, np.ascontiguousarray(W.transpose(1, 2, 3, 0)), b, Y, threads)
    else:  # conv1 (one input channel), and its dX (one output channel): whole planes
        correlate_kernel(Xp, np.ascontiguousarray(W), b, Y, threads)
    return Y


def conv2d_backward(dY, X, W, padding, threads=1):
    """dX, dW, db of a convolution (the math: :func:`.conv_naive.conv2d_backward`).

    dX is the forward kernel again: dY padded by kh-1-p, correlated with the flipped
    kernel. Returns dX (n, C, H, W_), dW (O, C, kh, kw), db (O,), W's dtype.
    """
    check_conv2d_backward("conv2d_backward", dY, X, W, padding)
    dYt = np.ascontiguousarray(np.asarray(dY, W.dtype).transpose(0, 2, 3, 1))  # (n, Ho, Wo, O)
    dWt, db = np.empty(W.shape[1:] + W.shape[:1], W.dtype), np.empty(W.shape[0], W.dtype)
    weight_grad_kernel(dYt, padded(np.asarray(X, W.dtype), padding), dWt, db, threads)
    dW = np.ascontiguousarray(dWt.transpose(3, 0, 1, 2))
    dX = conv2d_forward(dY, flipped_kernel(W), np.zeros(W.shape[1], W.dtype), backward_padding(W, padding), threads)
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


# --- Dense ops: local stand-ins, same names and arguments as the MLP's layer ops ---
# (to be replaced by those when the two are unified).

OPS += ("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_forward",
        "softmax_cross_entropy")


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def linear_kernel(A, W, b, Z, threads):
    """Z[i] = b + sum_k A[i,k] W[k] (k in order), split by rows i."""
    n, K = A.shape
    for part in prange(threads):
        for i in range(part * n // threads, (part + 1) * n // threads):
            Z[i] = b
            for k in range(K):
                a = A[i, k]
                for m in range(W.shape[1]):
                    Z[i, m] += a * W[k, m]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def linear_backward_kernel(dZ, A, W, dA, dW, db, threads):
    """dA[i,k] = sum_m dZ[i,m] W[k,m] (split by rows i); dW[k] = sum_i A[i,k] dZ[i]
    (split by rows k, images in order); db = sum_i dZ[i] (one part)."""
    n, K = A.shape
    M = W.shape[1]
    for part in prange(threads):
        for i in range(part * n // threads, (part + 1) * n // threads):
            for k in range(K):
                dA[i, k] = 0
                for m in range(M):
                    dA[i, k] += dZ[i, m] * W[k, m]
        for k in range(part * K // threads, (part + 1) * K // threads):
            dW[k] = 0
            for i in range(n):
                a = A[i, k]
                for m in range(M):
                    dW[k, m] += a * dZ[i, m]
        if part == 0:
            db[:] = 0
            for i in range(n):
                for m in range(M):
                    db[m] += dZ[i, m]


def linear_forward(A, W, b, threads=1):
    """Z = A @ W + b: A (n, K), W (K, M), b (M,) -> Z (n, M), W's dtype."""
    Z = np.empty(linear_out_shape("linear_forward", A, W, b), W.dtype)
    linear_kernel(np.ascontiguousarray(A, W.dtype), np.ascontiguousarray(W), np.ascontiguousarray(b, W.dtype), Z,
                  threads)
    return Z


def linear_backward(dZ, A, W, threads=1):
    """dA = dZ @ W.T (n, K), dW = A.T @ dZ (K, M), db = sum of dZ's rows (M,)."""
    check_linear_backward("linear_backward", dZ, A, W)
    A = np.ascontiguousarray(A, W.dtype)
    dA, dW, db = np.empty_like(A), np.empty_like(W), np.empty(W.shape[1], W.dtype)
    linear_backward_kernel(np.ascontiguousarray(dZ, W.dtype), A, np.ascontiguousarray(W), dA, dW, db, threads)
    return dA, dW, db


@njit(parallel=True, cache=True)
def relu_kernel(Z, A, threads):
    """A = max(Z, 0) on flat arrays (a NaN stays NaN)."""
    for part in prange(threads):
        for j in range(part * Z.size // threads, (part + 1) * Z.size // threads):
            A[j] = 0 if Z[j] <= 0 else Z[j]


@njit(parallel=True, cache=True)
def relu_backward_kernel(dA, Z, dZ, threads):
    """dZ = dA where Z > 0, else 0, on flat arrays."""
    for part in prange(threads):
        for j in range(part * Z.size // threads, (part + 1) * Z.size // threads):
            dZ[j] = dA[j] if Z[j] > 0 else 0


def relu_forward(Z, threads=1):
    """max(Z, 0), elementwise, any shape."""
    Z = np.ascontiguousarray(Z)
    out = np.empty_like(Z)
    relu_kernel(Z.reshape(-1), out.reshape(-1), threads)
    return out


def relu_backward(dA, Z, threads=1):
    """dZ = dA where Z > 0, else 0."""
    check_same_shape("relu_backward", dA, Z)
    Z = np.ascontiguousarray(Z)
    out = np.empty_like(Z)
    relu_backward_kernel(np.ascontiguousarray(dA, Z.dtype).reshape(-1), Z.reshape(-1), out.reshape(-1), threads)
    return out


@njit(cache=True)
def softmax_kernel(Z, y, P):
    """P = softmax of each row of Z (row max subtracted); with labels y, P becomes
    dZ = (P - Y) / n and the summed cross-entropy (float64) is returned."""
    n, k = Z.shape
    loss = 0.0
    for i in range(n):
        m = Z[i, 0]
        for c in range(1, k):
            m = max(m, Z[i, c])
        total = 0.0
        for c in range(k):
            P[i, c] = np.exp(Z[i, c] - m)
            total += P[i, c]
        for c in range(k):
            P[i, c] /= total
        if y is not None:
            # -log p[i, y_i] = log(sum exp(Z - m)) - (Z[i, y_i] - m); dZ = (P - Y) / n
            loss += np.log(total) - np.float64(Z[i, y[i]] - m)
            P[i, y[i]] -= 1
            for c in range(k):
                P[i, c] /= n
    return loss


def softmax_forward(Z, threads=1):
    """Row-wise softmax of Z (n, k)."""
    check_logits("softmax_forward", Z)
    Z = np.ascontiguousarray(Z)
    P = np.empty_like(Z)
    softmax_kernel(Z, None, P)
    return P


def softmax_cross_entropy(Z, y, threads=1):
    """Mean cross-entropy of the logits Z (n, k) for labels y (n,), and dZ = (P - Y) / n."""
    check_logits("softmax_cross_entropy", Z, y)
    Z = np.ascontiguousarray(Z)
    dZ = np.empty_like(Z)
    loss = softmax_kernel(Z, np.ascontiguousarray(y, np.int64), dZ)
    return float(loss / len(Z)), dZ
