"""The layer ops of the convolutional network, naive: loops, one multiply-add at a time.

This is the readable reference, written for a student. Arrays come in as NumPy arrays
and are turned into nested Python lists (``X[i][c][r][s]`` is pixel (r, s) of channel
c of image i); every number is computed by ``for`` loops over Python floats (float64),
and the results go back as NumPy arrays of the weights' dtype (of the input's for the
ops without weights). Shapes are in :mod:`~.layer_shapes`; the same names and argument
orders are in :mod:`~.conv_numpy` and :mod:`~.conv_numba`, each backward beside its
forward.

A correlation, as every deep-learning library computes under the name "convolution"
(stride 1, padding p: X is read as zero outside the image)::

    Y[i,o,r,s] = b[o] + sum_c sum_u sum_v X[i, c, r+u-p, s+v-p] * W[o, c, u, v]

It is slow, one Python multiply-add per term, so the tests run it on one to three
images.
"""

import numpy as np

from . import naive as mlp
from .layer_shapes import (POOL, backward_padding, check_conv2d_backward, check_linear_backward, check_logits,
                           check_maxpool_backward, check_same_shape, conv2d_out_shape, flipped_kernel,
                           linear_out_shape, maxpool_out_shape)

#: The ops this module provides (:func:`digitbench.kernels.layer_ops.get_ops`).
OPS = ("conv2d_forward", "conv2d_backward", "maxpool_forward", "maxpool_backward")


def correlate(X, W, b, p):
    """Y = the correlation of X by W plus b, padding p, on nested lists.

    X : n x C x H x W_ lists; W : O x C x kh x kw lists; b : list of O. Returns
    n x O x Ho x Wo lists, Ho = H + 2p - kh + 1, Wo = W_ + 2p - kw + 1.
    """
    n, C, H, Wd = len(X), len(X[0]), len(X[0][0]), len(X[0][0][0])
    O, kh, kw = len(W), len(W[0][0]), len(W[0][0][0])
    Ho, Wo = H + 2 * p - kh + 1, Wd + 2 * p - kw + 1
    Y = [[[[0.0] * Wo for _ in range(Ho)] for _ in range(O)] for _ in range(n)]
    for i in range(n):
        for o in range(O):
            for r in range(Ho):
                for s in range(Wo):
                    total = b[o]
                    for c in range(C):
                        for u in range(kh):
                            row = r + u - p  # the input row under kernel row u
                            if not 0 <= row < H:
                                continue  # padding: a zero contributes nothing
                            for v in range(kw):
                                col = s + v - p
                                if 0 <= col < Wd:
                                    total += X[i][c][row][col] * W[o][c][u][v]
                    Y[i][o][r][s] = total
    return Y


def conv2d_forward(X, W, b, padding):
    """Y[i,o,r,s] = b[o] + sum_{c,u,v} X[i, c, r+u-p, s+v-p] W[o, c, u, v] (zero outside X).

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W_)
    W : ndarray of shape (O, C, kh, kw), PyTorch's layout
    b : ndarray of shape (O,)
    padding : int, zeros added on every side

    Returns
    -------
    Y : ndarray of shape (n, O, H + 2p - kh + 1, W_ + 2p - kw + 1), W's dtype
    """
    conv2d_out_shape("conv2d_forward", X, W, b, padding)
    Y = correlate(np.asarray(X, np.float64).tolist(), W.tolist(), b.tolist(), padding)
    return np.array(Y, dtype=W.dtype)


def conv2d_backward(dY, X, W, padding):
    """The gradients of a convolution, given dY = dL/dY.

    Each output Y[i,o,r,s] uses X[i, c, r+u-p, s+v-p] with weight W[o,c,u,v], so:

    - db[o] = sum_{i,r,s} dY[i,o,r,s]  (dY/db = 1)
    - dW[o,c,u,v] = sum_{i,r,s} dY[i,o,r,s] X[i, c, r+u-p, s+v-p]: the correlation of
      the input with the output gradient;
    - dX[i,c,y,x] = sum_{o,u,v} dY[i, o, y-u+p, x-v+p] W[o,c,u,v]: substituting
      u' = kh-1-u turns it into sum_{o,u',v'} dY[i, o, y+u'-(kh-1-p), x+v'-(kw-1-p)]
      Wf[c,o,u',v'], a correlation of dY, padded by kh-1-p, with the flipped kernel
      Wf[c,o,u',v'] = W[o,c,kh-1-u',kw-1-v'] (the "full" correlation for p = 0).

    Parameters
    ----------
    dY : ndarray of shape (n, O, Ho, Wo)
    X : ndarray of shape (n, C, H, W_), the forward's input
    W : ndarray of shape (O, C, kh, kw)
    padding : int

    Returns
    -------
    dX : ndarray of shape (n, C, H, W_); dW (O, C, kh, kw); db (O,); W's dtype
    """
    check_conv2d_backward("conv2d_backward", dY, X, W, padding)
    x, d = np.asarray(X, np.float64).tolist(), np.asarray(dY, np.float64).tolist()
    n, C, H, Wd = np.shape(X)
    O, _, kh, kw = W.shape
    Ho, Wo = np.shape(dY)[2:]
    dW = [[[[0.0] * kw for _ in range(kh)] for _ in range(C)] for _ in range(O)]
    db = [0.0] * O
    for o in range(O):
        for i in range(n):
            for r in range(Ho):
                for s in range(Wo):
                    db[o] += d[i][o][r][s]
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    total = 0.0
                    for i in range(n):
                        for r in range(Ho):
                            row = r + u - padding
                            if not 0 <= row < H:
                                continue
                            for s in range(Wo):
                                col = s + v - padding
                                if 0 <= col < Wd:
                                    total += d[i][o][r][s] * x[i][c][row][col]
                    dW[o][c][u][v] = total
    # dX: the correlation of dY with the flipped kernel (its own zero bias), padding kh-1-p
    dX = correlate(d, flipped_kernel(W).tolist(), [0.0] * C, backward_padding(W, padding))
    return tuple(np.array(g, dtype=W.dtype) for g in (dX, dW, db))


def winner(plane, r, s):
    """(u, v), the place of the largest value of the 2x2 window (r, s) of ``plane``:
    the first maximum in row-major order (u, then v), so a tie goes to the earliest."""
    best, at = None, None
    for u in range(POOL):
        for v in range(POOL):
            value = plane[POOL * r + u][POOL * s + v]
            if best is None or value > best:  # strictly greater: a later tie does not win
                best, at = value, (u, v)
    return at


def maxpool_forward(X):
    """Y[i,c,r,s] = max over the 2x2 window X[i, c, 2r:2r+2, 2s:2s+2].

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W_), H and W_ even

    Returns
    -------
    Y : ndarray of shape (n, C, H/2, W_/2), X's dtype
    """
    n, C, Ho, Wo = maxpool_out_shape("maxpool_forward", X)
    x = np.asarray(X).tolist()
    Y = [[[[0.0] * Wo for _ in range(Ho)] for _ in range(C)] for _ in range(n)]
    for i in range(n):
        for c in range(C):
            for r in range(Ho):
                for s in range(Wo):
                    u, v = winner(x[i][c], r, s)
                    Y[i][c][r][s] = x[i][c][POOL * r + u][POOL * s + v]
    return np.array(Y, dtype=np.asarray(X).dtype)


def maxpool_backward(dY, X):
    """dX: each window's gradient goes to its winner only (dY/dX is 1 there, 0 elsewhere).

    Parameters
    ----------
    dY : ndarray of shape (n, C, H/2, W_/2)
    X : ndarray of shape (n, C, H, W_), the forward's input (the winners are found again)

    Returns
    -------
    dX : ndarray of shape (n, C, H, W_), X's dtype
    """
    check_maxpool_backward("maxpool_backward", dY, X)
    x, d = np.asarray(X).tolist(), np.asarray(dY, np.float64).tolist()
    n, C, H, Wd = np.shape(X)
    dX = [[[[0.0] * Wd for _ in range(H)] for _ in range(C)] for _ in range(n)]
    for i in range(n):
        for c in range(C):
            for r in range(H // POOL):
                for s in range(Wd // POOL):
                    u, v = winner(x[i][c], r, s)
                    dX[i][c][POOL * r + u][POOL * s + v] = d[i][c][r][s]
    return np.array(dX, dtype=np.asarray(X).dtype)


# --- Dense ops, ReLU and softmax: the MLP's loops (naive.py, on nested lists), behind the
# layer-op arguments (arrays in, arrays of the weights' dtype out) ---

OPS += ("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_forward",
        "softmax_cross_entropy")


def linear_forward(A, W, b):
    """Z[i,m] = b[m] + sum_k A[i,k] W[k,m]: A (n, K), W (K, M), b (M,) -> Z (n, M)."""
    linear_out_shape("linear_forward", A, W, b)
    Z = mlp.linear_forward(np.asarray(A, np.float64).tolist(), W.tolist(), b.tolist())
    return np.array(Z, dtype=W.dtype).reshape(len(A), len(b))


def linear_backward(dZ, A, W):
    """dA[i,k] = sum_m dZ[i,m] W[k,m]; dW[k,m] = sum_i A[i,k] dZ[i,m]; db[m] = sum_i dZ[i,m].

    Returns dA (n, K), dW (K, M), db (M,), W's dtype.
    """
    check_linear_backward("linear_backward", dZ, A, W)
    dW, db, dA = mlp.linear_backward(np.asarray(A, np.float64).tolist(), np.asarray(dZ, np.float64).tolist(),
                                     W.tolist())
    return np.array(dA, dtype=W.dtype).reshape(np.shape(A)), np.array(dW, dtype=W.dtype), np.array(db, dtype=W.dtype)


def as_rows(Z):
    """Z (n, ...) as n nested lists of floats, and its shape and dtype to come back to."""
    Z = np.asarray(Z)
    return Z.reshape(len(Z), -1).tolist(), Z.shape, Z.dtype


def relu_forward(Z):
    """A = max(Z, 0), elementwise, any shape."""
    rows, shape, dtype = as_rows(Z)
    return np.array(mlp.relu_forward(rows), dtype=dtype).reshape(shape)


def relu_backward(dA, Z):
    """dZ = dA * relu'(Z), relu'(z) = 1 if z > 0 else 0."""
    check_same_shape("relu_backward", dA, Z)
    rows, shape, dtype = as_rows(Z)
    return np.array(mlp.relu_backward(as_rows(dA)[0], rows), dtype=dtype).reshape(shape)


def softmax_forward(Z):
    """Row-wise softmax, the row maximum subtracted first (so that nothing overflows)."""
    check_logits("softmax_forward", Z)
    return np.array(mlp.softmax(np.asarray(Z, np.float64).tolist()), dtype=np.asarray(Z).dtype).reshape(np.shape(Z))


def softmax_cross_entropy(Z, y):
    """Mean cross-entropy of the logits Z (n, 10) for labels y (n,), and dL/dZ = (P - Y) / n."""
    check_logits("softmax_cross_entropy", Z, y)
    loss, dZ = mlp.softmax_cross_entropy(np.asarray(Z, np.float64).tolist(), [int(t) for t in y])
    return loss, np.array(dZ, dtype=np.asarray(Z).dtype).reshape(np.shape(Z))
