"""The numba backend's inference kernels: probabilities and labels for any number of rows.

Two ways, chosen by the number of rows (:func:`forward_into`):

- **Sparse, no BLAS** (below :data:`DENSE_MIN_ROWS`): all three layers are loops over
  the non-zero inputs of each layer. About 81% of the pixels are 0 (layer 1 runs over
  the others, as in training), and about half of ``a1`` and ``a2`` are 0 after the
  ReLUs, so a sample costs about a quarter of the dense multiply-adds; and without BLAS
  there is no BLAS thread pool to hold at one thread, whose cost would dominate
  one-image latency. From :data:`PARALLEL_MIN_ROWS`
  rows on, one contiguous part of the rows per thread (:func:`forward_parallel`).
  Each row is computed by one thread in the same order: the same bits on any number
  of threads.
- **BLAS on the frequent pixels, lists for the rare ones** (from :data:`DENSE_MIN_ROWS`
  rows on, :func:`forward_dense_range`): in blocks of 256 rows, the pixels non-zero in
  more than a fifth of the block's rows (~285 of 784 on MNIST) enter ``X @ W1`` as one
  BLAS product, and the few other non-zero entries (~16 a row) are added from lists;
  the sparse loops alone cannot keep up with BLAS on big blocks (W1's rows come from L2
  cache once per non-zero pixel), and BLAS over every pixel used in a block (~530) does
  twice the multiply-adds. The lists come from byte masks made while counting
  (:func:`~digitbench.kernels.numba_sparse.sparse_from_masks`): scanning every pixel of
  a row again cost as much as the lists saved (docs/results.md has the figures).
  BLAS's blocking depends on the block, so this path may differ from the other in the
  last bits (tests/test_agreement.py's tolerances hold), and across thread counts.
"""

import numpy as np
from numba import njit, prange

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .numba_layers import FASTMATH, add_bias_rows, linear_forward_sparse, relu_forward, softmax_rows
from .numba_sparse import Sparse, sparse_from_float, sparse_from_masks

#: From this many rows on, :func:`forward_parallel` splits them across the threads.
PARALLEL_MIN_ROWS = 32
#: From this many rows on, :func:`forward_dense_parallel` (BLAS) is used.
DENSE_MIN_ROWS = 256
#: Rows per BLAS product in :func:`forward_dense_range`.
DENSE_BLOCK = 256
#: A pixel non-zero in more than this share of a block's rows enters its BLAS product
#: (:func:`split_pixels`); the others are added from lists. Of 0.2, 0.3 and 0.4 (and
#: blocks of 128, 256 and 512 rows), the fastest at 1,024 and 4,096 rows on two threads.
FREQUENT_SHARE = 0.2


@njit(cache=True, fastmath=FASTMATH)
def linear_forward_nonzero(first, last, a, W, b, z):
    """z[i] = b + sum over k with a[i, k] != 0 of a[i, k] W[k], for rows first:last.

    The non-zero entries of a[i] are listed first (``a`` is a ReLU output, about half
    zeros), then added four rows of W per pass, as :func:`~.numba_layers.linear_forward_sparse` does.
    """
    K, H = W.shape
    nz = np.empty(K, np.int64)
    for i in range(first, last):
        ai, zi = a[i], z[i]
        c = 0
        for k in range(K):
            nz[c] = k  # written always, kept only if a[i, k] != 0 (no branch)
            c += ai[k] != 0
        for h in range(H):
            zi[h] = b[h]
        t = 0
        while t + 4 <= c:
            k0, k1, k2, k3 = nz[t], nz[t + 1], nz[t + 2], nz[t + 3]
            w0, w1, w2, w3 = W[k0], W[k1], W[k2], W[k3]
            x0, x1, x2, x3 = ai[k0], ai[k1], ai[k2], ai[k3]
            for h in range(H):
                zi[h] += x0 * w0[h] + x1 * w1[h] + x2 * w2[h] + x3 * w3[h]
            t += 4
        while t < c:
            w0 = W[nz[t]]
            x0 = ai[nz[t]]
            for h in range(H):
                zi[h] += x0 * w0[h]
            t += 1


@njit(cache=True)
def forward_range(X, first, last, params, p, block):
    """p[first:last] = softmax(forward(X[first:last])), ``block`` rows at a time.

    Parameters
    ----------
    X : ndarray of shape (n, 784), float, read-only
    first, last : int, the rows to compute
    params : Params
    p : ndarray of shape (n, 10), filled for rows first:last
    block : int, rows per block (the buffers are allocated once, for one block)
    """
    W1, b1, W2, b2, W3, b3 = params
    dt = W1.dtype
    D, H1, H2, K = W1.shape[0], W1.shape[1], W2.shape[1], W3.shape[1]
    rows = min(block, last - first)
    none_i32, none_dt = np.empty(0, np.int32), np.empty(0, dt)  # the CSC half is not used
    sp = Sparse(np.empty(rows + 1, np.int64), np.empty(rows * D, np.int32), np.empty(rows * D, dt),
                np.empty(0, np.int64), none_i32, none_dt)
    z1, a1 = np.empty((rows, H1), dt), np.empty((rows, H1), dt)
    z2, a2 = np.empty((rows, H2), dt), np.empty((rows, H2), dt)
    z3 = np.empty((rows, K), dt)
    for start in range(first, last, block):
        n = min(start + block, last) - start
        sparse_from_float(X[start:start + n], sp, False)
        linear_forward_sparse(0, n, sp, W1, b1, z1)  # z1 = X @ W1 + b1 (non-zero pixels)
        relu_forward(0, n, z1, a1)  # a1 = relu(z1)
        linear_forward_nonzero(0, n, a1, W2, b2, z2)  # z2 = a1 @ W2 + b2 (non-zero a1)
        relu_forward(0, n, z2, a2)  # a2 = relu(z2)
        linear_forward_nonzero(0, n, a2, W3, b3, z3)  # z3 = a2 @ W3 + b3 (non-zero a2)
        softmax_rows(0, n, z3, p[start:start + n])  # p = softmax(z3)


@njit(cache=True, parallel=True)
def forward_parallel(X, params, p, block, threads):
    """:func:`forward_range` over all rows, one contiguous part per thread (``threads`` parts)."""
    n = X.shape[0]
    for part in prange(threads):
        forward_range(X, part * n // threads, (part + 1) * n // threads, params, p, block)


@njit(cache=True)
def forward_serial(X, params, p, block):
    """:func:`forward_range` over all rows on the calling thread (no parallel region)."""
    forward_range(X, 0, X.shape[0], params, p, block)


@njit(cache=True)
def argmax_rows(p, labels):
    """labels[i] = the first c with p[i, c] = max(p[i]), as np.argmax(p, axis=1)."""
    for i in range(p.shape[0]):
        best = 0
        for c in range(1, p.shape[1]):
            if p[i, c] > p[i, best] or (p[i, c] != p[i, c] and p[i, best] == p[i, best]):
                best = c  # larger, or the first NaN (np.argmax's rule)
        labels[i] = best


def forward_into(X, params, p, block, threads):
    """Fill p (n, 10) for X (n, 784): sparse on one thread below PARALLEL_MIN_ROWS rows,
    sparse in ``threads`` parts below DENSE_MIN_ROWS, else BLAS on the frequent pixels and
    lists for the others, in ``threads`` parts (each part runs its own BLAS products: with
    more than one, the caller holds BLAS at one thread, :func:`digitbench.threads.blas_single_thread`)."""
    if len(X) >= DENSE_MIN_ROWS:
        forward_dense_parallel(X, params, p, DENSE_BLOCK, threads)
    elif len(X) >= PARALLEL_MIN_ROWS and threads > 1:
        forward_parallel(X, params, p, block, threads)
    else:
        forward_serial(X, params, p, block)


@njit(cache=True)
def split_pixels(X, share, count, dense_cols, listed, nonzero):
    """Sort the pixels of the rows X (n, 784) into frequent and rare ones; return m.

    A pixel non-zero in more than ``share`` of the rows is frequent: it is listed in
    ``dense_cols[:m]`` (the BLAS product's columns). The others get ``listed[j] = 1``
    (their non-zero entries go into the CSR lists), the frequent ones 0. ``count`` (784,)
    receives each pixel's number of non-zero rows, ``nonzero`` (at least n, 784) uint8
    is 1 where X is non-zero.
    """
    n, D = X.shape
    count[:] = 0
    for i in range(n):
        xi, nz = X[i], nonzero[i]
        for j in range(D):
            nz[j] = xi[j] != 0
            count[j] += nz[j]
    limit = share * n
    m = 0
    for j in range(D):
        frequent = count[j] > limit
        dense_cols[m] = j  # written always, kept only if frequent (no branch)
        m += frequent
        listed[j] = not frequent
    return m


@njit(cache=True)
def forward_dense_range(X, first, last, params, p, block, share=FREQUENT_SHARE):
    """p[first:last] = softmax(forward(X[first:last])), ``block`` rows a BLAS product.

    Per block, layer 1 is split by pixel (:func:`split_pixels`):

    - the frequent pixels (non-zero in more than ``share`` of the block's rows, m of
      them) are copied into ``Xc`` (n, m) and their rows of W1 into ``Wc`` (m, 128):
      ``zd = Xc @ Wc``, one BLAS product;
    - the rare ones' non-zero entries are listed as CSR and added row by row by
      :func:`~.numba_layers.linear_forward_sparse`: ``z1 = b1 + sum over listed j of x_ij W1[j]``;
    - a1 = relu(z1 + zd).

    Every pixel is either frequent or listed (or 0 in the row), so
    z1 + zd = X @ W1 + b1. Then z2 = a1 @ W2 + b2 and z3 = a2 @ W3 + b3 as BLAS products.
    """
    W1, b1, W2, b2, W3, b3 = params
    dt = W1.dtype
    D, H1, H2, K = W1.shape[0], W1.shape[1], W2.shape[1], W3.shape[1]
    rows = max(0, min(block, last - first))
    count, dense_cols, listed = np.empty(D, np.int32), np.empty(D, np.int64), np.empty(D, np.uint8)
    nonzero = np.empty((rows, D), np.uint8)  # D = 784 = 98 words of 8 bytes a row
    nonzero_words, listed_words = nonzero.view(np.uint64), listed.view(np.uint64)
    none_i32, none_dt = np.empty(0, np.int32), np.empty(0, dt)  # the CSC half is not used
    sp = Sparse(np.empty(rows + 1, np.int64), np.empty(rows * D, np.int32), np.empty(rows * D, dt),
                np.empty(0, np.int64), none_i32, none_dt)
    Xc_flat, Wc = np.empty(rows * D, dt), np.empty((D, H1), dt)
    z1, zd = np.empty((rows, H1), dt), np.empty((rows, H1), dt)
    z2, a2, z3 = np.empty((rows, H2), dt), np.empty((rows, H2), dt), np.empty((rows, K), dt)
    for start in range(first, last, block):
        n = min(start + block, last) - start
        Xb = X[start:start + n]
        m = split_pixels(Xb, share, count, dense_cols, listed, nonzero)
        Xc = Xc_flat[:n * m].reshape((n, m))
        for i in range(n):
            for c in range(m):
                Xc[i, c] = Xb[i, dense_cols[c]]
        for c in range(m):
            Wc[c] = W1[dense_cols[c]]
        sparse_from_masks(Xb, nonzero_words, listed_words, sp)  # the rare pixels' entries
        linear_forward_sparse(0, n, sp, W1, b1, z1)  # z1 = b1 + the rare pixels' part of X @ W1
        if m > 0:
            np.dot(Xc, Wc[:m], zd[:n])  # zd = the frequent pixels' part
            add_rows(n, zd, z1)  # z1 += zd: the whole of X @ W1 + b1
        relu_forward(0, n, z1, z1)  # a1 = relu(z1), in z1
        np.dot(z1[:n], W2, z2[:n])
        add_bias_rows(n, z2, b2)
        relu_forward(0, n, z2, a2)  # a2 = relu(a1 @ W2 + b2)
        np.dot(a2[:n], W3, z3[:n])
        add_bias_rows(n, z3, b3)  # z3 = a2 @ W3 + b3
        softmax_rows(0, n, z3, p[start:start + n])


@njit(cache=True, inline="always")
def add_rows(n, z, a):
    """a += z for the first n rows."""
    for i in range(n):
        for h in range(z.shape[1]):
            a[i, h] += z[i, h]


@njit(cache=True, parallel=True)
def forward_dense_parallel(X, params, p, block, threads, share=FREQUENT_SHARE):
    """:func:`forward_dense_range` over all rows, one contiguous part per thread."""
    n = X.shape[0]
    for part in prange(threads):
        forward_dense_range(X, part * n // threads, (part + 1) * n // threads, params, p, block, share)
