"""The layer ops of the convolutional network, vectorized with NumPy.

No Python loop over images or pixels: a convolution is *im2col* and one matrix
product. ``sliding_window_view`` gives every kh x kw window of the padded batch
without copying; laid out as columns, one per output pixel, it is ``cols`` of shape
(C*kh*kw, n*Ho*Wo), and the correlation is ``W.reshape(O, -1) @ cols`` (BLAS). Max
pooling views each 2x2 window as four values on a last axis. Names, arguments and
shapes are those of :mod:`~.conv_naive` (the reference) and :mod:`~.layer_shapes`.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import numpy_backend as mlp
from .layer_shapes import (POOL, backward_padding, check_conv2d_backward, check_linear_backward, check_logits,
                           check_maxpool_backward, check_same_shape, conv2d_out_shape, flipped_kernel,
                           linear_out_shape, maxpool_out_shape)

#: The ops this module provides (:func:`digitbench.kernels.layer_ops.get_ops`).
OPS = ("conv2d_forward", "conv2d_backward", "maxpool_forward", "maxpool_backward")


def im2col(X, kh, kw, padding):
    """The windows of X as columns: cols[(c, u, v), (i, r, s)] = Xpad[i, c, r+u, s+v].

    The copy keeps each run of Wo pixels of a row contiguous, so it reads Xpad in order.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W_)

    Returns
    -------
    cols : ndarray of shape (C*kh*kw, n*Ho*Wo)
    """
    p = padding
    Xp = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p))) if p else X
    windows = sliding_window_view(Xp, (kh, kw), axis=(2, 3))  # (n, C, Ho, Wo, kh, kw), a view
    n, C, Ho, Wo = windows.shape[:4]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, n * Ho * Wo)  # the one copy


def conv2d_forward(X, W, b, padding):
    """Y[i,o,r,s] = b[o] + sum_{c,u,v} Xpad[i, c, r+u, s+v] W[o, c, u, v]: the product
    W as (O, C*kh*kw) @ cols, which is Y as (O, n*Ho*Wo), then made NCHW.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W_)
    W : ndarray of shape (O, C, kh, kw)
    b : ndarray of shape (O,)
    padding : int

    Returns
    -------
    Y : ndarray of shape (n, O, Ho, Wo), W's dtype
    """
    n, O, Ho, Wo = conv2d_out_shape("conv2d_forward", X, W, b, padding)
    cols = im2col(np.asarray(X, W.dtype), W.shape[2], W.shape[3], padding)
    Y = W.reshape(O, -1) @ cols + b[:, None]  # (O, n*Ho*Wo)
    return np.ascontiguousarray(Y.reshape(O, n, Ho, Wo).transpose(1, 0, 2, 3))


def conv2d_backward(dY, X, W, padding):
    """dX, dW, db of a convolution (the math: :func:`.conv_naive.conv2d_backward`).

    dW = dY as (O, n*Ho*Wo) @ cols.T: the correlation of the input with the
    output gradient; db sums dY over images and pixels; dX is dY padded by kh-1-p,
    correlated with the flipped kernel (:func:`~.layer_shapes.flipped_kernel`): the
    forward again.

    Returns
    -------
    dX : ndarray of shape (n, C, H, W_); dW (O, C, kh, kw); db (O,); W's dtype
    """
    check_conv2d_backward("conv2d_backward", dY, X, W, padding)
    dY = np.asarray(dY, W.dtype)
    n, O = dY.shape[:2]
    C, kh, kw = W.shape[1:]
    cols = im2col(np.asarray(X, W.dtype), kh, kw, padding)
    dW = (dY.transpose(1, 0, 2, 3).reshape(O, -1) @ cols.T).reshape(W.shape)
    db = dY.sum(axis=(0, 2, 3))
    dX = conv2d_forward(dY, flipped_kernel(W), np.zeros(C, W.dtype), backward_padding(W, padding))
    return dX, dW, db


def pool_windows(X):
    """Each 2x2 window's four values on a last axis, in row-major order (u, then v).

    X (n, C, H, W_) -> (n, C, H/2, W_/2, 4)
    """
    n, C, H, Wd = X.shape
    return X.reshape(n, C, H // POOL, POOL, Wd // POOL, POOL).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, C, H // POOL, Wd // POOL, POOL * POOL)


def maxpool_forward(X):
    """Y[i,c,r,s] = max of the 2x2 window X[i, c, 2r:2r+2, 2s:2s+2]: (n, C, H/2, W_/2)."""
    maxpool_out_shape("maxpool_forward", X)
    return pool_windows(np.asarray(X)).max(axis=-1)


def maxpool_backward(dY, X):
    """dX: each window's gradient to its winner, the first maximum in row-major order
    (``argmax`` returns the first), zero to the other three. Returns (n, C, H, W_)."""
    check_maxpool_backward("maxpool_backward", dY, X)
    X = np.asarray(X)
    n, C, H, Wd = X.shape
    first = pool_windows(X).argmax(axis=-1)  # (n, C, H/2, W_/2), 0..3
    routed = (np.arange(POOL * POOL) == first[..., None]) * np.asarray(dY)[..., None]
    dX = routed.reshape(n, C, H // POOL, Wd // POOL, POOL, POOL).transpose(0, 1, 2, 4, 3, 5).reshape(X.shape)
    return dX.astype(X.dtype, copy=False)


# --- Dense ops, ReLU and softmax: the MLP's (numpy_backend), behind the layer-op arguments ---

OPS += ("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_forward",
        "softmax_cross_entropy")


def linear_forward(A, W, b):
    """Z = A @ W + b: A (n, K), W (K, M), b (M,) -> Z (n, M) (:func:`~.numpy_backend.linear_forward`)."""
    linear_out_shape("linear_forward", A, W, b)
    return mlp.linear_forward(np.asarray(A, W.dtype), W, b)


def linear_backward(dZ, A, W):
    """dA = dZ @ W.T (n, K), dW = A.T @ dZ (K, M), db = sum of dZ's rows (M,)
    (:func:`~.numpy_backend.linear_backward`, which returns them as dW, db, dA)."""
    check_linear_backward("linear_backward", dZ, A, W)
    dW, db, dA = mlp.linear_backward(np.asarray(A, W.dtype), np.asarray(dZ, W.dtype), W)
    return dA, dW, db


def relu_forward(Z):
    """max(Z, 0), elementwise."""
    return mlp.relu_forward(Z)


def relu_backward(dA, Z):
    """dZ = dA where Z > 0, else 0 (relu'(z) = 1 for z > 0)."""
    check_same_shape("relu_backward", dA, Z)
    Z = np.asarray(Z)
    return mlp.relu_backward(dA, Z).astype(Z.dtype, copy=False)


def softmax_forward(Z):
    """Row-wise softmax of Z (n, k), the row max subtracted first."""
    check_logits("softmax_forward", Z)
    return mlp.softmax(Z)


def softmax_cross_entropy(Z, y):
    """Mean cross-entropy of the logits Z (n, k) for labels y (n,), and dZ = (P - Y) / n."""
    check_logits("softmax_cross_entropy", Z, y)
    loss, dZ = mlp.softmax_cross_entropy(Z, np.asarray(y, dtype=np.intp))
    return float(loss), dZ
