"""The numba backend's layer kernels: forward, backward, and the fused update of W1.

Each kernel only fills arrays it is given. The arrays travel in a few named tuples:
``params`` and ``velocity`` (:class:`~digitbench.params.Params`), ``grads`` (a Params
whose ``dW1`` is only filled by :meth:`loss_and_grads`: training never forms it), the
batch's non-zero pixels ``sp`` (:class:`~digitbench.kernels.numba_sparse.Sparse`),
and the activations ``acts`` (:class:`Acts`). Shapes and names are those of
:mod:`digitbench.kernels.base`.

FASTMATH = {"contract"} lets LLVM fuse ``a * b + c`` into one FMA instruction (one
rounding instead of two); nothing else of fastmath (no reassociation), so the results
are deterministic and within an ulp or so per operation of the unfused ones.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .stack_row import ROW, check_row_width, stack_row

FASTMATH = {"contract"}


class Acts(NamedTuple):
    """One batch's activations and their gradients, room for n samples, and the
    transposed weights the backward pass multiplies by."""

    z1: np.ndarray  # (n, 128)  z1 = X @ W1 + b1
    a1: np.ndarray  # (n, 128)  a1 = relu(z1)
    z2: np.ndarray  # (n, 64)   z2 = a1 @ W2 + b2
    a2: np.ndarray  # (n, 64)   a2 = relu(z2)
    z3: np.ndarray  # (n, 10)   z3 = a2 @ W3 + b3; softmax(z3) = p
    dz1: np.ndarray  # (n, 128)  dL/dz1
    dz2: np.ndarray  # (n, 64)   dL/dz2
    dz3: np.ndarray  # (n, 10)   dL/dz3 = (p - Y) / n
    W2T: np.ndarray  # (64, 128) W2.T, contiguous: BLAS multiplies by it faster than by
    W3T: np.ndarray  # (10, 64)  W3.T (the transposed view)


@njit(cache=True)
def new_acts(n, H1, H2, K, dtype):
    """Empty :class:`Acts` for up to n samples."""
    return Acts(np.empty((n, H1), dtype), np.empty((n, H1), dtype), np.empty((n, H2), dtype),
                np.empty((n, H2), dtype), np.empty((n, K), dtype), np.empty((n, H1), dtype),
                np.empty((n, H2), dtype), np.empty((n, K), dtype), np.empty((H2, H1), dtype),
                np.empty((K, H2), dtype))


@njit(cache=True, fastmath=FASTMATH)
def linear_forward_sparse(first, last, sp, W1, b1, z1):
    """z1 = X @ W1 + b1 over the non-zero pixels only, for samples first:last:
    z1[i] = b1 + sum_j x_ij W1[j].

    The sum is kept in a row on the stack (:func:`~.stack_row.stack_row`), which LLVM
    keeps in registers, and written to z1[i] once. Eight pixels are added per pass,
    summed first among themselves.
    """
    check_row_width(W1)
    row_ptr, rj, rv = sp.row_ptr, sp.rj, sp.rv
    acc = stack_row(W1)
    for i in range(first, last):
        for h in range(ROW):
            acc[h] = b1[h]
        t = row_ptr[i]
        end = row_ptr[i + 1]
        while t + 8 <= end:
            w0, w1, w2, w3 = W1[rj[t]], W1[rj[t + 1]], W1[rj[t + 2]], W1[rj[t + 3]]
            w4, w5, w6, w7 = W1[rj[t + 4]], W1[rj[t + 5]], W1[rj[t + 6]], W1[rj[t + 7]]
            x0, x1, x2, x3 = rv[t], rv[t + 1], rv[t + 2], rv[t + 3]
            x4, x5, x6, x7 = rv[t + 4], rv[t + 5], rv[t + 6], rv[t + 7]
            for h in range(ROW):
                acc[h] += (x0 * w0[h] + x1 * w1[h] + x2 * w2[h] + x3 * w3[h]
                           + x4 * w4[h] + x5 * w5[h] + x6 * w6[h] + x7 * w7[h])
            t += 8
        while t < end:
            w0 = W1[rj[t]]
            x0 = rv[t]
            for h in range(ROW):
                acc[h] += x0 * w0[h]
            t += 1
        zi = z1[i]
        for h in range(ROW):
            zi[h] = acc[h]


@njit(cache=True)
def dense_forward(n, params, acts):
    """The layers after z1 (filled) for the first n rows, with BLAS for the products:
    a1 = relu(z1); z2 = a1 @ W2 + b2; a2 = relu(z2); z3 = a2 @ W3 + b3."""
    relu_forward(0, n, acts.z1, acts.a1)  # a1 = relu(z1)
    linear_forward(n, acts.a1, params.W2, params.b2, acts.z2)  # z2 = a1 @ W2 + b2
    relu_forward(0, n, acts.z2, acts.a2)  # a2 = relu(z2)
    linear_forward(n, acts.a2, params.W3, params.b3, acts.z3)  # z3 = a2 @ W3 + b3


@njit(cache=True)
def linear_forward(n, a, W, b, z):
    """z = a @ W + b for the first n rows (BLAS for the product)."""
    np.dot(a[:n], W, z[:n])
    add_bias_rows(n, z, b)


@njit(cache=True)
def linear_backward(n, a, dz, W, WT, dW, db, da):
    """Backprop through z = a @ W + b for the first n rows, given dz = dL/dz:
    dW = a.T @ dz, db = sum_i dz_i, da = dz @ W.T (``WT`` receives W.T, contiguous)."""
    np.dot(a[:n].T, dz[:n], dW)
    sum_rows(n, dz, db)
    WT[:] = W.T
    np.dot(dz[:n], WT, da[:n])


@njit(cache=True)
def linear_backward_wide(n, a, dz, W, dW, db, da):
    """:func:`linear_backward` for a wide W (the CNN's 1568 x 128): da = dz @ W.T multiplies
    by W's transposed view (BLAS reads it as it is), not by a copy of W.T."""
    np.dot(a[:n].T, dz[:n], dW)
    sum_rows(n, dz, db)
    np.dot(dz[:n], W.T, da[:n])


@njit(cache=True, inline="always")
def relu_forward(first, last, z, a):
    """a = max(z, 0) for rows first:last (a may be z)."""
    for i in range(first, last):
        for h in range(z.shape[1]):
            a[i, h] = 0 if z[i, h] <= 0 else z[i, h]  # a NaN stays NaN, as in np.maximum


@njit(cache=True, inline="always")
def relu_backward(n, z, d):
    """d *= relu'(z) in place: zero where z <= 0 (first n rows)."""
    for i in range(n):
        for h in range(z.shape[1]):
            if not z[i, h] > 0:
                d[i, h] = 0


@njit(cache=True, inline="always")
def add_bias_rows(n, z, b):
    """z += b for the first n rows."""
    for i in range(n):
        for h in range(z.shape[1]):
            z[i, h] += b[h]


@njit(cache=True, inline="always")
def row_max(z, i):
    """max(z[i, :])."""
    m = z[i, 0]
    for c in range(1, z.shape[1]):
        m = max(m, z[i, c])
    return m


@njit(cache=True)
def softmax_rows(first, last, z3, p):
    """p[i] = softmax(z3[i]) for rows first:last; subtracting the row max avoids overflow."""
    K = z3.shape[1]
    for i in range(first, last):
        m = row_max(z3, i)
        s = 0.0
        for c in range(K):
            e = np.exp(z3[i, c] - m)
            p[i, c] = e
            s += e
        for c in range(K):
            p[i, c] /= s


@njit(cache=True)
def softmax_cross_entropy(n, y, z3, dz3):
    """The summed (not yet averaged) cross-entropy of softmax(z3) against the labels y, in
    float64; fills dz3 (first n rows) with dL/dz3 = (p - Y) / n, Y the one-hot labels.

    loss_i = -(z3[i, y] - m - log(sum exp(z3 - m))), m the row max. Each exp once, in
    the parameters' dtype, kept in dz3's row until the sum (in float64) is known.
    """
    K = z3.shape[1]
    t = dz3.dtype.type
    inv_n = t(1) / t(n)
    loss = 0.0
    for i in range(n):
        m = row_max(z3, i)
        s = 0.0
        for c in range(K):
            e = np.exp(z3[i, c] - m)
            dz3[i, c] = e
            s += e
        loss -= np.float64(z3[i, y[i]] - m) - np.log(s)
        scale = t(inv_n / s)
        for c in range(K):
            dz3[i, c] *= scale
        dz3[i, y[i]] -= inv_n
    return loss


@njit(cache=True)
def dense_backward(n, y, params, acts, grads):
    """Loss and the gradients of every layer but dW1 (see :func:`linear_backward_sparse`).

    Returns the summed (not yet averaged) cross-entropy, in float64. Fills the first n
    rows of acts.dz3 (n, 10), acts.dz2 (n, 64), acts.dz1 (n, 128), and the grads dW3, db3,
    dW2, db2, db1.
    """
    z1, a1, z2, a2, z3, dz1, dz2, dz3, W2T, W3T = acts
    dW1, db1, dW2, db2, dW3, db3 = grads  # dW1: linear_backward_sparse, or fused into W1's update
    loss = softmax_cross_entropy(n, y, z3, dz3)  # dz3 = (p - Y) / n
    linear_backward(n, a2, dz3, params.W3, W3T, dW3, db3, dz2)  # dW3 = a2.T @ dz3, db3, da2 = dz3 @ W3.T
    relu_backward(n, z2, dz2)  # dz2 = da2 * relu'(z2)
    linear_backward(n, a1, dz2, params.W2, W2T, dW2, db2, dz1)  # dW2 = a1.T @ dz2, db2, da1 = dz2 @ W2.T
    relu_backward(n, z1, dz1)  # dz1 = da1 * relu'(z1)
    sum_rows(n, dz1, db1)  # db1 = sum_i dz1_i
    return loss


@njit(cache=True, inline="always")
def sum_rows(n, d, out):
    """out = sum of the first n rows of d."""
    out[:] = 0
    for i in range(n):
        for h in range(d.shape[1]):
            out[h] += d[i, h]


@njit(cache=True, inline="always")
def sgd_step(w, v, g, lr, momentum):
    """One entry's SGD step, the one place of numba's update rule; returns (w', v'):

        v' = momentum * v + g;  w' = w - lr * v'      (heavy-ball momentum)
        w' = w - lr * g;        v' = v                 (momentum = 0: plain SGD)

    :func:`sgd_update` and W1's fused update (:func:`sgd_update_sparse`) both call it
    (inlined, so each is compiled with its caller's fastmath flags). Their loops test
    ``momentum`` outside the loop, so that the compiler drops this test inside it.
    """
    if momentum == 0:
        return w - lr * g, v
    v_new = momentum * v + g
    return w - lr * v_new, v_new


@njit(cache=True)
def sgd_update(w, v, g, lr, momentum):
    """In place, flat: v <- momentum * v + g; w <- w - lr * v (w <- w - lr * g if momentum = 0)."""
    wf = w.reshape(-1)
    vf = v.reshape(-1)
    gf = g.reshape(-1)
    if momentum != 0:
        for k in range(wf.shape[0]):
            wf[k], vf[k] = sgd_step(wf[k], vf[k], gf[k], lr, momentum)
    else:
        for k in range(wf.shape[0]):
            wf[k], vf[k] = sgd_step(wf[k], vf[k], gf[k], lr, momentum)


# ----------------------------------------------------- W1's fused backward and update, and its uses


@njit(cache=True, fastmath=FASTMATH, inline="always")
def gradient_row_sparse(sp, dz1, j, mean, dz1_sum, g):
    """Into ``g`` (128,): row j of dW1 = X.T @ dz1, g = sum_i x_ij dz1[i], summed sample by
    sample over the batch's CSC entries of pixel j; minus mean[j] dz1_sum for centred inputs
    (``mean`` of shape (784,), else (0,))."""
    for h in range(ROW):
        g[h] = 0
    for t in range(sp.col_ptr[j], sp.col_ptr[j + 1]):
        d = dz1[sp.row_idx[t]]
        x = sp.vals[t]
        for h in range(ROW):
            g[h] += x * d[h]
    if mean.shape[0] > 0:  # g_j - mean[j] dz1_sum
        c = -mean[j]
        for h in range(ROW):
            g[h] += c * dz1_sum[h]


@njit(cache=True, fastmath=FASTMATH)
def sgd_update_sparse(sp, dz1, W1, V1, lr, momentum, first, last, mean, dz1_sum):
    """Rows first:last of W1's SGD step, fused with its gradient: for each pixel j, with
    g_j row j of dW1 (:func:`gradient_row_sparse`),

        V1[j] <- momentum * V1[j] + g_j;  W1[j] <- W1[j] - lr * V1[j]     (:func:`sgd_step`)

    g_j is summed in a row on the kernel's stack (:func:`~.stack_row.stack_row`), which
    LLVM keeps in registers: dW1 never exists as a dense array, and each row of V1 and
    W1 is read and written once.
    """
    check_row_width(W1)
    g = stack_row(W1)
    for j in range(first, last):
        gradient_row_sparse(sp, dz1, j, mean, dz1_sum, g)
        w, v = W1[j], V1[j]
        if momentum != 0:
            for h in range(ROW):
                w[h], v[h] = sgd_step(w[h], v[h], g[h], lr, momentum)
        else:
            for h in range(ROW):
                w[h], v[h] = sgd_step(w[h], v[h], g[h], lr, momentum)


@njit(cache=True, fastmath=FASTMATH)
def linear_backward_sparse(sp, dz1, dW1, first, last):
    """Rows first:last of dW1 = X.T @ dz1 (784, 128), for ``loss_and_grads``."""
    check_row_width(dW1)
    none = np.empty(0, dW1.dtype)  # not centred
    g = stack_row(dW1)
    for j in range(first, last):
        gradient_row_sparse(sp, dz1, j, none, none, g)
        out = dW1[j]
        for h in range(ROW):
            out[h] = g[h]
