"""The shape rules of the layer ops, written once for the three backends.

Batches are NCHW: ``X`` of shape (n, channels, height, width), one image per index of
the first axis, as PyTorch lays them out. Every op of :mod:`~.conv_naive`,
:mod:`~.conv_numpy` and :mod:`~.conv_numba` calls the check for its arguments before
it computes, so a wrong shape is a ``ValueError`` that names the op and the shapes,
never an index error deep inside a loop.

Shapes of each op (stride 1, square or not, padding ``p`` on every side)::

    conv2d_forward(X, W, b, padding)   X (n, C, H, W_)  W (O, C, kh, kw)  b (O,)
                                       -> Y (n, O, H + 2p - kh + 1, W_ + 2p - kw + 1)
    conv2d_backward(dY, X, W, padding) -> dX like X, dW like W, db like b
    maxpool_forward(X)                 X (n, C, H, W_), H and W_ even -> (n, C, H/2, W_/2)
    maxpool_backward(dY, X)            -> dX like X
    linear_forward(A, W, b)            A (n, K)  W (K, M)  b (M,)  -> Z (n, M)
    linear_backward(dZ, A, W)          -> dA like A, dW like W, db like b
    relu_forward(Z) / relu_backward(dA, Z)               any shape, elementwise
    softmax_forward(Z)                 Z (n, k) logits -> probabilities (n, k)
    softmax_cross_entropy(Z, y)        Z (n, k), y (n,) -> (mean loss, dZ (n, k))
"""

import numpy as np

#: Side of the max-pooling window (and its stride): 2x2 windows that do not overlap.
POOL = 2


def _fail(op, message):
    raise ValueError(f"{op}: {message}")


def _dims(op, name, a, ndim):
    shape = np.shape(a)
    if len(shape) != ndim:
        _fail(op, f"{name} of shape {shape} should have {ndim} dimensions")
    return shape


def conv2d_out_shape(op, X, W, b, padding):
    """Check a convolution's arguments; return the output's shape (n, O, Ho, Wo)."""
    n, C, H, Wd = _dims(op, "X", X, 4)
    O, Ci, kh, kw = _dims(op, "W", W, 4)
    if Ci != C:
        _fail(op, f"X of shape {np.shape(X)} has {C} channels but W of shape {np.shape(W)} expects {Ci}")
    if b is not None and np.shape(b) != (O,):
        _fail(op, f"b of shape {np.shape(b)} should be ({O},), one bias per output channel of W {np.shape(W)}")
    if not (isinstance(padding, (int, np.integer)) and padding >= 0):
        _fail(op, f"padding {padding!r} should be an integer >= 0")
    Ho, Wo = H + 2 * padding - kh + 1, Wd + 2 * padding - kw + 1
    if Ho < 1 or Wo < 1:
        _fail(op, f"the kernel {kh}x{kw} is larger than the padded image {H + 2 * padding}x{Wd + 2 * padding}")
    return n, O, Ho, Wo


def check_conv2d_backward(op, dY, X, W, padding):
    """Check a convolution's backward arguments: dY must have the forward output's shape."""
    expected = conv2d_out_shape(op, X, W, None, padding)
    if np.shape(dY) != expected:
        _fail(op, f"dY of shape {np.shape(dY)} should be {expected}, the output's for X {np.shape(X)}")


def maxpool_out_shape(op, X):
    """Check a max-pooling input; return the output's shape (n, C, H/2, W/2)."""
    n, C, H, Wd = _dims(op, "X", X, 4)
    if H % POOL or Wd % POOL or H == 0 or Wd == 0:
        _fail(op, f"X of shape {np.shape(X)}: height and width should be even and positive for {POOL}x{POOL} pooling")
    return n, C, H // POOL, Wd // POOL


def check_maxpool_backward(op, dY, X):
    expected = maxpool_out_shape(op, X)
    if np.shape(dY) != expected:
        _fail(op, f"dY of shape {np.shape(dY)} should be {expected}, the output's for X {np.shape(X)}")


def linear_out_shape(op, A, W, b):
    """Check a dense layer's arguments (A @ W + b); return the output's shape (n, M)."""
    n, K = _dims(op, "A", A, 2)
    Kw, M = _dims(op, "W", W, 2)
    if Kw != K:
        _fail(op, f"A of shape {np.shape(A)} has {K} features but W of shape {np.shape(W)} expects {Kw}")
    if b is not None and np.shape(b) != (M,):
        _fail(op, f"b of shape {np.shape(b)} should be ({M},), one bias per column of W {np.shape(W)}")
    return n, M


def check_linear_backward(op, dZ, A, W):
    expected = linear_out_shape(op, A, W, None)
    if np.shape(dZ) != expected:
        _fail(op, f"dZ of shape {np.shape(dZ)} should be {expected}, the output's for A {np.shape(A)}")


def check_same_shape(op, dA, Z):
    """Elementwise backward (ReLU): the gradient has the input's shape."""
    if np.shape(dA) != np.shape(Z):
        _fail(op, f"dA of shape {np.shape(dA)} should have Z's shape {np.shape(Z)}")


def check_logits(op, Z, y=None):
    """Logits (n, k) and, if given, n integer labels in 0..k-1."""
    n, k = _dims(op, "Z", Z, 2)
    if y is not None:
        if np.shape(y) != (n,):
            _fail(op, f"y of shape {np.shape(y)} should be ({n},), one label per row of Z {np.shape(Z)}")
        y = np.asarray(y)
        if n and (y.min() < 0 or y.max() >= k):
            _fail(op, f"labels should be in 0..{k - 1}")


def flipped_kernel(W):
    """The kernel of the input's gradient: W with in and out channels swapped and both
    spatial axes reversed, Wf[c, o, u, v] = W[o, c, kh-1-u, kw-1-v], shape (C, O, kh, kw).

    dX is the *full* correlation of dY with Wf: a correlation with padding kh-1-p
    (:func:`backward_padding`) of dY by the flipped kernel, i.e. the transposed convolution.
    """
    return np.ascontiguousarray(np.asarray(W)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def backward_padding(W, padding):
    """Padding of dY that makes the flipped-kernel correlation give dX its input's size.

    A forward with padding p maps H to H + 2p - kh + 1; with padding kh - 1 - p the
    correlation maps it back. Square kernels only (the networks use 5x5).
    """
    kh, kw = np.shape(W)[2:]
    if kh != kw or padding > kh - 1:
        raise ValueError(f"conv2d_backward: needs a square kernel and padding <= {kh - 1}, "
                         f"got {kh}x{kw} and {padding}")
    return kh - 1 - padding
