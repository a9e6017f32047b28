"""The Numba backend: jitted loop kernels, the fast one.

Layout follows umap-learn / pynndescent: module-level kernels that only fill arrays they
are given, and a :class:`NumbaBackend` whose public methods check the arguments, allocate
the buffers and call the kernels. Shapes and names are those of
:mod:`digitbench.kernels.base` (``z1, a1, z2, a2, z3, p, dz3, dW3, ...``).

Where the speed comes from
--------------------------
- **Sparse inputs.** About 81% of MNIST's pixels are exactly 0, so ``z1 = X @ W1`` is
  computed, for each sample, as a sum over its *non-zero* pixels ``j`` of
  ``x_j * W1[j, :]`` (a 128-wide vector operation, four pixels per pass), and
  ``dW1 = X.T @ dz1`` as the matching sum over the samples in which pixel ``j`` is
  non-zero. That is ~5x fewer multiply-adds than the dense products; a dense input is
  still handled correctly, it just gains nothing.
- **Whole chunks in one compiled call.** :meth:`NumbaBackend.train_batches` runs all its
  steps inside :func:`train_steps`: each step gathers its rows straight from the uint8
  images (skipping all-black 8-pixel words, scaling by a 256-entry table equal to
  ``v / 255``), and all buffers are allocated once per call.
- **Fused update of W1.** With momentum ``m`` the step is ``v <- m v + g;
  W <- W - lr v``; :func:`update_W1_rows` does it row by row, adding ``g``'s row from
  the batch's non-zero pixels on the way, so ``dW1`` never exists as a dense array and
  each row of ``v`` and ``W1`` is read and written once per step.
- **BLAS for the small dense layers.** ``a1 @ W2``, ``a2 @ W3`` and their gradients are
  ``np.dot`` calls inside the kernels, which numba sends to SciPy's BLAS; it is held to
  one thread (:func:`blas_single_thread`), as a second one only waits on products this
  small and, on a busy machine, spins.

- **Flush-to-zero** inside the kernels (``kernels/denormals.py``): decaying momentum
  would otherwise leave thousands of W1's velocities subnormal, ~100x slower each.
- **Two threads, three parallel regions per step** (:func:`train_steps`): layer 1's
  samples split in two; then step k's dense layers beside the gathering of batch k+1's
  pixels; then W1's rows in ranges. A batch of 64 is little work, so each region is
  ~50 us and numba's OpenMP layer (~1.5 us a region) is what makes this pay; under
  the ``workqueue`` layer (~100 us a region) or on cores busy with other work it does
  not. No value is ever summed across threads, so results are bit-identical on 1 or 2
  threads (tests/test_numba_backend.py): deterministic. Measured epochs: 0.21 s serial,
  0.156 s with the overlap, 0.147 s with layer 1 split too.

The kernels use ``fastmath={"contract"}`` only (``a * b + c`` may become one FMA,
rounded once), and agree with the NumPy backend to rounding error
(tests/test_agreement.py).

Compilation
-----------
The kernels are generic over float32 and float64 and compiled on first use per dtype,
with ``cache=True`` so that later processes load the machine code from ``__pycache__``.
:meth:`NumbaBackend.warmup` triggers (and times) that compilation, so that callers can
keep it out of timed regions; :func:`compile_report` measures the first-call (compile)
and cached start times in fresh processes.
"""

import time

import numpy as np
from numba import njit, prange

from digitbench.params import Params, init_params, zeros_like_params

from .base import Backend, blas_single_thread
from .denormals import flush_subnormals_on, mxcsr_restore

# --------------------------------------------------------------------------- kernels
#
# A batch's non-zero pixels are held twice, as a sparse matrix in both orders:
# - by row (CSR): the entries of sample i are rv[row_ptr[i]:row_ptr[i + 1]], at pixels
#   rj[...]; the forward pass runs over these, sample by sample;
# - by column (CSC): the entries of pixel j are vals[col_ptr[j]:col_ptr[j + 1]], from
#   samples row_idx[...]; the update of W1 runs over these, so that each row W1[j] is
#   read and written once per step while the 64 rows of dz1 it meets stay in L1 cache.
#
# FASTMATH = {"contract"} lets LLVM fuse a * b + c into one FMA instruction (one
# rounding instead of two); nothing else of fastmath (no reassociation), so the results
# are deterministic and within an ulp or so per operation of the unfused ones.
FASTMATH = {"contract"}
#: W1's update splits its 784 rows into this many fixed ranges, run in parallel; the
#: result does not depend on how many threads run them (each row is one thread's).
ROW_PARTS = 8


@njit(cache=True)
def sparse_from_uint8(images, words, rows, table, row_ptr, rj, rv, col_ptr, row_idx, vals):
    """The non-zero pixels of ``images[rows]``, scaled to [0, 1], in CSR and CSC form.

    Parameters
    ----------
    images : ndarray of shape (N, 784), uint8
    words : the same memory viewed as (N, 98) uint64, to skip 8 black pixels at a time
    rows : ndarray of shape (n,), int64, the batch's rows of ``images``
    table : ndarray of shape (256,), float, ``table[v] = v / 255`` in the parameters' dtype
    row_ptr : ndarray of shape (n + 1,), int64, filled (CSR)
    rj, rv : ndarrays of shape (>= n * 784,), int32 and float, filled (CSR)
    col_ptr : ndarray of shape (785,), int64, filled (CSC)
    row_idx, vals : ndarrays of shape (>= n * 784,), int32 and float, filled (CSC)
    """
    D = images.shape[1]
    c = 0
    for i in range(rows.shape[0]):
        row_ptr[i] = c
        r = rows[i]
        for w in range(words.shape[1]):
            if words[r, w] != 0:
                for j in range(8 * w, 8 * w + 8):
                    v = images[r, j]
                    rj[c] = j  # written always, kept only if v != 0 (no branch)
                    rv[c] = table[v]
                    c += v != 0
    row_ptr[rows.shape[0]] = c
    csr_to_csc(rows.shape[0], D, row_ptr, rj, rv, col_ptr, row_idx, vals)


@njit(cache=True)
def sparse_from_float(X, row_ptr, rj, rv, col_ptr, row_idx, vals, with_csc):
    """The non-zero entries of a float batch ``X`` (n, 784); see :func:`sparse_from_uint8`.

    The CSC copy (col_ptr, row_idx, vals) is filled only if ``with_csc`` (the forward
    pass needs only the CSR one).
    """
    c = 0
    for i in range(X.shape[0]):
        row_ptr[i] = c
        for j in range(X.shape[1]):
            if X[i, j] != 0:
                rj[c] = j
                rv[c] = X[i, j]
                c += 1
    row_ptr[X.shape[0]] = c
    if with_csc:
        csr_to_csc(X.shape[0], X.shape[1], row_ptr, rj, rv, col_ptr, row_idx, vals)


@njit(cache=True)
def csr_to_csc(n, D, row_ptr, rj, rv, col_ptr, row_idx, vals):
    """Counting sort of the CSR entries by pixel; within a pixel, samples stay in order."""
    col_ptr[:] = 0
    for t in range(row_ptr[n]):
        col_ptr[rj[t] + 1] += 1
    for j in range(D):
        col_ptr[j + 1] += col_ptr[j]
    fill = col_ptr[:D].copy()
    for i in range(n):
        for t in range(row_ptr[i], row_ptr[i + 1]):
            j = rj[t]
            row_idx[fill[j]] = i
            vals[fill[j]] = rv[t]
            fill[j] += 1


@njit(cache=True, fastmath=FASTMATH)
def layer1_forward(first, last, row_ptr, rj, rv, W1, b1, z1):
    """z1 = X @ W1 + b1 over the non-zero pixels only, for samples first:last:
    z1[i] = b1 + sum_j x_ij W1[j].

    Four pixels per pass over the 128-wide row, so z1[i] is loaded and stored once per
    four multiply-adds.
    """
    H = W1.shape[1]
    for i in range(first, last):
        zi = z1[i]
        for h in range(H):
            zi[h] = b1[h]
        t = row_ptr[i]
        end = row_ptr[i + 1]
        while t + 4 <= end:
            w0, w1, w2, w3 = W1[rj[t]], W1[rj[t + 1]], W1[rj[t + 2]], W1[rj[t + 3]]
            x0, x1, x2, x3 = rv[t], rv[t + 1], rv[t + 2], rv[t + 3]
            for h in range(H):
                zi[h] += x0 * w0[h] + x1 * w1[h] + x2 * w2[h] + x3 * w3[h]
            t += 4
        while t < end:
            w0 = W1[rj[t]]
            x0 = rv[t]
            for h in range(H):
                zi[h] += x0 * w0[h]
            t += 1


@njit(cache=True)
def forward_layers(n, row_ptr, rj, rv, W1, b1, W2, b2, W3, b3, z1, a1, z2, a2, z3):
    """Fill the first n rows of z1, a1 (n, 128), z2, a2 (n, 64), z3 (n, 10).

    z1 = X @ W1 + b1 over the non-zero pixels (:func:`layer1_forward`); a = relu(z);
    z2 = a1 @ W2 + b2 and z3 = a2 @ W3 + b3 are dense products (np.dot calls BLAS).
    """
    layer1_forward(0, n, row_ptr, rj, rv, W1, b1, z1)
    dense_forward(n, W2, b2, W3, b3, z1, a1, z2, a2, z3)


@njit(cache=True)
def dense_forward(n, W2, b2, W3, b3, z1, a1, z2, a2, z3):
    """The rest of :func:`forward_layers` once z1 is filled: a1 = relu(z1), layers 2, 3."""
    relu_rows(n, z1, a1)
    np.dot(a1[:n], W2, z2[:n])
    add_bias_rows(n, z2, b2)
    relu_rows(n, z2, a2)
    np.dot(a2[:n], W3, z3[:n])
    add_bias_rows(n, z3, b3)


@njit(cache=True, inline="always")
def relu_rows(n, z, a):
    """a = max(z, 0) for the first n rows."""
    for i in range(n):
        for h in range(z.shape[1]):
            a[i, h] = z[i, h] if z[i, h] > 0 else 0


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
def softmax_rows(n, z3, p):
    """p[i] = softmax(z3[i]) for the first n rows; subtracting the row max avoids overflow."""
    K = z3.shape[1]
    for i in range(n):
        m = row_max(z3, i)
        s = 0.0
        for c in range(K):
            e = np.exp(z3[i, c] - m)
            p[i, c] = e
            s += e
        for c in range(K):
            p[i, c] /= s


@njit(cache=True)
def backward_layers(n, y, W2, W3, z1, a1, z2, a2, z3, dz3, dW3, db3, dz2, dW2, db2, dz1, db1):
    """Loss and the gradients of every layer but dW1 (see :func:`update_W1_rows`).

    Returns the summed (not yet averaged) cross-entropy, in float64. Fills the first n
    rows of dz3 (n, 10), dz2 (n, 64), dz1 (n, 128), and dW3, db3, dW2, db2, db1.
    """
    K = z3.shape[1]
    t = dz3.dtype.type
    inv_n = t(1) / t(n)
    loss = 0.0
    for i in range(n):
        # softmax + cross-entropy: loss_i = -(z3[i, y] - m - log(sum exp(z3 - m)));
        # together they give the shortcut dL/dz3 = (p - Y) / n, Y the one-hot labels.
        m = row_max(z3, i)
        s = 0.0
        for c in range(K):
            s += np.exp(np.float64(z3[i, c] - m))
        log_s = np.log(s)
        loss -= np.float64(z3[i, y[i]] - m) - log_s
        for c in range(K):
            dz3[i, c] = t(np.exp(np.float64(z3[i, c] - m) - log_s)) * inv_n
        dz3[i, y[i]] -= inv_n
    # layer 3: dW3 = a2.T @ dz3, db3 = sum_i dz3, da2 = dz3 @ W3.T, dz2 = da2 * relu'(z2)
    np.dot(a2[:n].T, dz3[:n], dW3)
    sum_rows(n, dz3, db3)
    np.dot(dz3[:n], W3.T, dz2[:n])
    relu_backward_rows(n, z2, dz2)  # relu'(z) = 1 where z > 0, else 0
    sum_rows(n, dz2, db2)
    # layer 2: dW2 = a1.T @ dz2, da1 = dz2 @ W2.T, dz1 = da1 * relu'(z1)
    np.dot(a1[:n].T, dz2[:n], dW2)
    np.dot(dz2[:n], W2.T, dz1[:n])
    relu_backward_rows(n, z1, dz1)
    sum_rows(n, dz1, db1)
    return loss


@njit(cache=True, inline="always")
def sum_rows(n, d, out):
    """out = sum of the first n rows of d."""
    out[:] = 0
    for i in range(n):
        for h in range(d.shape[1]):
            out[h] += d[i, h]


@njit(cache=True, inline="always")
def relu_backward_rows(n, z, d):
    """d *= relu'(z) in place: zero where z <= 0 (first n rows)."""
    for i in range(n):
        for h in range(z.shape[1]):
            if not z[i, h] > 0:
                d[i, h] = 0


@njit(cache=True, parallel=True)
def update_W1_rows(col_ptr, row_idx, vals, dz1, W1, V1, lr, decay, scale):
    """For each pixel j, with g_j = sum_i x_ij dz1[i] (row j of dW1 = X.T @ dz1):

        V1[j] <- decay * V1[j] + scale * g_j        (decay = 1: no multiplication)
        W1[j] <- W1[j] - lr * V1[j]                  (lr = 0: no update)

    Three uses: dW1 itself (V1 = dW1 zeroed, decay 1, scale 1, lr 0); SGD with momentum
    m (decay m, scale 1, lr); plain SGD (V1 = W1, decay 1, scale -lr, lr 0: W1 += -lr g).
    Row j of V1 and W1 is read and written once; four samples are added per pass. The
    rows are split into ROW_PARTS ranges run in parallel (:func:`update_W1_row_range`);
    each thread flushes subnormals itself, as threads do not inherit the caller's MXCSR.
    """
    D = W1.shape[0]
    for part in prange(ROW_PARTS):
        saved_mxcsr = flush_subnormals_on()
        update_W1_row_range(col_ptr, row_idx, vals, dz1, W1, V1, lr, decay, scale,
                            part * D // ROW_PARTS, (part + 1) * D // ROW_PARTS)
        mxcsr_restore(saved_mxcsr)


@njit(cache=True, fastmath=FASTMATH)
def update_W1_row_range(col_ptr, row_idx, vals, dz1, W1, V1, lr, decay, scale, first, last):
    """Rows first:last of :func:`update_W1_rows`."""
    H = dz1.shape[1]
    for j in range(first, last):
        v = V1[j]
        if decay != 1:
            for h in range(H):
                v[h] *= decay
        t = col_ptr[j]
        end = col_ptr[j + 1]
        while t + 4 <= end:
            d0, d1, d2, d3 = dz1[row_idx[t]], dz1[row_idx[t + 1]], dz1[row_idx[t + 2]], dz1[row_idx[t + 3]]
            x0, x1, x2, x3 = scale * vals[t], scale * vals[t + 1], scale * vals[t + 2], scale * vals[t + 3]
            for h in range(H):
                v[h] += x0 * d0[h] + x1 * d1[h] + x2 * d2[h] + x3 * d3[h]
            t += 4
        while t < end:
            d0 = dz1[row_idx[t]]
            x0 = scale * vals[t]
            for h in range(H):
                v[h] += x0 * d0[h]
            t += 1
        if lr != 0:
            w = W1[j]
            for h in range(H):
                w[h] -= lr * v[h]


@njit(cache=True)
def sgd_update(w, v, g, lr, momentum):
    """In place, flat: v <- momentum * v + g; w <- w - lr * v (w <- w - lr * g if momentum = 0)."""
    wf = w.reshape(-1)
    vf = v.reshape(-1)
    gf = g.reshape(-1)
    if momentum != 0:
        for k in range(wf.shape[0]):
            vf[k] = momentum * vf[k] + gf[k]
            wf[k] -= lr * vf[k]
    else:
        for k in range(wf.shape[0]):
            wf[k] -= lr * gf[k]


@njit(cache=True, parallel=True)
def train_steps(W1, b1, W2, b2, W3, b3, V1, vb1, V2, vb2, V3, vb3, images, words, table, labels, order,
                batch_size, lrs, momentum, losses):
    """Run len(lrs) SGD steps in place; fill ``losses`` (steps,) float64 with each batch's mean loss.

    The arithmetic is that of :meth:`digitbench.kernels.base.Backend.train_batches`
    (``v <- m v + g; w <- w - lr v``); W1's update is fused with its gradient
    (:func:`update_W1_rows`), so dW1 never exists as a dense array.

    Two threads, and results that do not depend on them: each step is two parallel
    regions. In the first, one task runs step k's forward and backward pass and the
    updates of b1, W2, b2, W3, b3 (:func:`dense_step`) while the other gathers batch
    k + 1's non-zero pixels into the second set of sparse buffers (it needs nothing from
    step k). In the second, W1's rows are updated in parallel ranges. No value is ever
    summed across threads, so the same inputs give the same bits on 1 thread or 2.
    """
    dt = W1.dtype
    one = dt.type(1)
    D, H1, H2, K = W1.shape[0], W1.shape[1], W2.shape[1], W3.shape[1]
    B = batch_size
    steps = lrs.shape[0]
    # two sets of sparse buffers: the current batch's and the next one's
    row_ptr, next_row_ptr = np.empty(B + 1, np.int64), np.empty(B + 1, np.int64)
    col_ptr, next_col_ptr = np.empty(D + 1, np.int64), np.empty(D + 1, np.int64)
    rj, next_rj = np.empty(B * D, np.int32), np.empty(B * D, np.int32)
    rv, next_rv = np.empty(B * D, dt), np.empty(B * D, dt)
    row_idx, next_row_idx = np.empty(B * D, np.int32), np.empty(B * D, np.int32)
    vals, next_vals = np.empty(B * D, dt), np.empty(B * D, dt)
    z1, a1, dz1 = np.empty((B, H1), dt), np.empty((B, H1), dt), np.empty((B, H1), dt)
    z2, a2, dz2 = np.empty((B, H2), dt), np.empty((B, H2), dt), np.empty((B, H2), dt)
    z3, dz3 = np.empty((B, K), dt), np.empty((B, K), dt)
    dW3, db3, dW2, db2, db1 = (np.empty_like(W3), np.empty_like(b3), np.empty_like(W2),
                               np.empty_like(b2), np.empty_like(b1))
    yb = np.empty(B, np.int64)
    step_loss = np.zeros(1)
    if steps > 0:
        sparse_from_uint8(images, words, order[0:min(B, order.shape[0])], table, row_ptr, rj, rv,
                          col_ptr, row_idx, vals)
    for step in range(steps):
        start = step * B
        n = min(start + B, order.shape[0]) - start
        lr = dt.type(lrs[step])
        for half in prange(2):  # layer 1, the samples split in two
            layer1_forward(half * n // 2, (half + 1) * n // 2, row_ptr, rj, rv, W1, b1, z1)
        for task in prange(2):
            saved_mxcsr = flush_subnormals_on()  # per thread (see denormals.py)
            if task == 0:
                rows = order[start:start + n]
                for i in range(n):
                    yb[i] = labels[rows[i]]
                step_loss[0] = dense_step(n, yb, row_ptr, rj, rv, W1, b1, W2, b2, W3, b3, vb1, V2, vb2, V3, vb3,
                                          z1, a1, z2, a2, z3, dz3, dW3, db3, dz2, dW2, db2, dz1, db1, lr, momentum)
            elif step + 1 < steps:
                nxt = order[start + B:min(start + 2 * B, order.shape[0])]
                sparse_from_uint8(images, words, nxt, table, next_row_ptr, next_rj, next_rv,
                                  next_col_ptr, next_row_idx, next_vals)
            mxcsr_restore(saved_mxcsr)
        losses[step] = step_loss[0] / n
        if momentum != 0:  # V1 <- m V1 + dW1; W1 <- W1 - lr V1
            update_W1_rows(col_ptr, row_idx, vals, dz1, W1, V1, lr, momentum, one)
        else:  # W1 <- W1 + (-lr) dW1
            update_W1_rows(col_ptr, row_idx, vals, dz1, W1, W1, dt.type(0), one, -lr)
        row_ptr, next_row_ptr = next_row_ptr, row_ptr
        col_ptr, next_col_ptr = next_col_ptr, col_ptr
        rj, next_rj = next_rj, rj
        rv, next_rv = next_rv, rv
        row_idx, next_row_idx = next_row_idx, row_idx
        vals, next_vals = next_vals, vals


@njit(cache=True)
def dense_step(n, yb, row_ptr, rj, rv, W1, b1, W2, b2, W3, b3, vb1, V2, vb2, V3, vb3,
               z1, a1, z2, a2, z3, dz3, dW3, db3, dz2, dW2, db2, dz1, db1, lr, momentum):
    """One step's forward pass after layer 1 (z1 filled), its backward pass and the SGD
    updates of all but W1. Returns the batch's summed loss; leaves dz1 (n, 128) for
    W1's update."""
    dense_forward(n, W2, b2, W3, b3, z1, a1, z2, a2, z3)
    loss = backward_layers(n, yb, W2, W3, z1, a1, z2, a2, z3, dz3, dW3, db3, dz2, dW2, db2, dz1, db1)
    sgd_update(b1, vb1, db1, lr, momentum)
    sgd_update(W2, V2, dW2, lr, momentum)
    sgd_update(b2, vb2, db2, lr, momentum)
    sgd_update(W3, V3, dW3, lr, momentum)
    sgd_update(b3, vb3, db3, lr, momentum)
    return loss


@njit(cache=True)
def forward_blocks(X, W1, b1, W2, b2, W3, b3, p, block):
    """p = softmax(forward(X)) for X (n, 784), ``block`` rows at a time; p (n, 10) filled."""
    D, H1, H2, K = W1.shape[0], W1.shape[1], W2.shape[1], W3.shape[1]
    dt = W1.dtype
    row_ptr = np.empty(block + 1, np.int64)
    col_ptr = np.empty(D + 1, np.int64)
    rj, row_idx = np.empty(block * D, np.int32), np.empty(block * D, np.int32)
    rv, vals = np.empty(block * D, dt), np.empty(block * D, dt)
    z1, a1 = np.empty((block, H1), dt), np.empty((block, H1), dt)
    z2, a2 = np.empty((block, H2), dt), np.empty((block, H2), dt)
    z3 = np.empty((block, K), dt)
    for start in range(0, X.shape[0], block):
        stop = min(start + block, X.shape[0])
        n = stop - start
        sparse_from_float(X[start:stop], row_ptr, rj, rv, col_ptr, row_idx, vals, False)
        forward_layers(n, row_ptr, rj, rv, W1, b1, W2, b2, W3, b3, z1, a1, z2, a2, z3)
        softmax_rows(n, z3, p[start:stop])


# --------------------------------------------------------------------------- backend


def _check_params(params):
    dtype = params.W1.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"numba backend: parameters must be float32 or float64, not {dtype}")
    for name, a in zip(Params._fields, params):
        if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
            raise TypeError(f"numba backend: {name} must be a writeable C-contiguous {dtype} array")
    return dtype


def _readonly(a):
    """A read-only view of ``a``: inputs are always passed read-only, so that numba
    compiles one signature per dtype whether the caller's arrays are writeable or not
    (``load_mnist`` returns read-only arrays)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _as_batch(X, dtype):
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.ndim != 2 or X.shape[1] != 784:
        raise ValueError(f"numba backend: X must have shape (n, 784), not {X.shape}")
    return _readonly(X)


class NumbaBackend(Backend):
    """Numba-jitted kernels; float32 or float64 as the parameters are. Deterministic,
    whatever the number of threads."""

    name = "numba"
    deterministic = True
    #: Rows per block in :meth:`forward` and :meth:`loss_and_grads`'s CSC gathering.
    block = 64

    def forward(self, params, X):
        dtype = _check_params(params)
        X = _as_batch(X, dtype)
        p = np.empty((len(X), 10), dtype)
        with blas_single_thread():
            forward_blocks(X, *params, p, self.block)
        return p

    def loss_and_grads(self, params, X, y):
        dtype = _check_params(params)
        W1, b1, W2, b2, W3, b3 = params
        X = _as_batch(X, dtype)
        y = _readonly(np.ascontiguousarray(y, dtype=np.int64))
        n = len(X)
        if n == 0 or y.shape != (n,) or y.min() < 0 or y.max() > 9:
            raise ValueError("numba backend: y must hold one label in 0..9 per row of X (n >= 1)")
        row_ptr, col_ptr = np.empty(n + 1, np.int64), np.empty(785, np.int64)
        rj, row_idx = np.empty(X.size, np.int32), np.empty(X.size, np.int32)
        rv, vals = np.empty(X.size, dtype), np.empty(X.size, dtype)
        sparse_from_float(X, row_ptr, rj, rv, col_ptr, row_idx, vals, True)
        z1, a1, dz1 = (np.empty((n, 128), dtype) for _ in range(3))
        z2, a2, dz2 = (np.empty((n, 64), dtype) for _ in range(3))
        z3, dz3 = np.empty((n, 10), dtype), np.empty((n, 10), dtype)
        dW3, db3, dW2, db2, db1 = (np.empty_like(a) for a in (W3, b3, W2, b2, b1))
        with blas_single_thread():
            forward_layers(n, row_ptr, rj, rv, *params, z1, a1, z2, a2, z3)
            loss = backward_layers(n, y, W2, W3, z1, a1, z2, a2, z3, dz3, dW3, db3, dz2, dW2, db2, dz1, db1)
        dW1 = np.zeros_like(W1)
        one = dtype.type(1)
        update_W1_rows(col_ptr, row_idx, vals, dz1, W1, dW1, dtype.type(0), one, one)
        return float(loss / n), Params(dW1, db1, dW2, db2, dW3, db3)

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0):
        dtype = _check_params(params)
        for name, v in zip(Params._fields, velocity):
            if v.dtype != dtype or not v.flags.c_contiguous or not v.flags.writeable:
                raise TypeError(f"numba backend: velocity {name} must be a C-contiguous {dtype} array")
        images = np.ascontiguousarray(images, dtype=np.uint8)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        order = np.ascontiguousarray(order, dtype=np.int64)
        lrs = np.ascontiguousarray(lrs, dtype=np.float64)
        steps = len(lrs)
        if len(order) < (steps - 1) * batch_size + 1:
            raise ValueError(f"numba backend: order has {len(order)} rows, too few for {steps} steps")
        losses = np.empty(steps)
        if images.ndim != 2 or images.shape[1] % 8:
            raise ValueError(f"numba backend: images must have shape (N, 784), not {images.shape}")
        images, labels, order, lrs = (_readonly(a) for a in (images, labels, order, lrs))
        words = images.view(np.uint64)  # 8 pixels per word: all-black words are skipped
        if not words.flags.aligned:  # e.g. a slice starting mid-word: copy once
            images = _readonly(images.copy())
            words = images.view(np.uint64)
        table = np.arange(256, dtype=dtype) / dtype.type(255)  # table[v] = v / 255, as images / 255
        with blas_single_thread():
            train_steps(*params, *velocity, images, words, table, labels, order, int(batch_size), lrs,
                        dtype.type(momentum), losses)
        return losses

    #: Seconds the last :meth:`warmup` took (None before the first).
    last_warmup_seconds = None

    def warmup(self, dtypes=(np.float32,)):
        """Compile (or load from the cache) every kernel for ``dtypes``; return the seconds taken.

        Call it before timing anything: the first call of a jitted function compiles it
        (tens of seconds) or loads it from numba's on-disk cache (about a second); after
        that, calls cost nothing extra. Also sets :attr:`last_warmup_seconds`.
        """
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(4, 784), dtype=np.uint8)
        labels = np.arange(4, dtype=np.int64)
        for dtype in dtypes:
            params = init_params(0, dtype)
            X = images.astype(dtype) / 255
            self.forward(params, X)
            self.loss_and_grads(params, X, labels)
            self.train_batches(params, zeros_like_params(params), images, labels,
                               np.arange(4, dtype=np.int64), 2, np.array([0.0, 0.0]), 0.9)
        self.last_warmup_seconds = time.perf_counter() - t0
        return self.last_warmup_seconds


def compile_report(dtypes=("float32",), cache_dir=None):
    """Time numba's first call (compilation) and a cached start, each in a fresh process.

    Runs ``NumbaBackend().warmup(dtypes)`` twice in new Python processes sharing an
    empty cache folder (``NUMBA_CACHE_DIR``): the first compiles every kernel and writes
    the cache, the second only loads it. Import time is excluded from both.

    Returns
    -------
    dict with ``compile_seconds`` and ``cached_seconds`` (floats) and ``dtypes``
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile

    code = ("import json, sys, numpy as np; from digitbench.kernels.numba_backend import NumbaBackend; "
            "print(json.dumps(NumbaBackend().warmup(tuple(np.dtype(d).type for d in sys.argv[1:]))))")
    times = []
    with tempfile.TemporaryDirectory(prefix="digitbench-numba-cache-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir or tmp)
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code, *dtypes], env=env, check=True,
                                 capture_output=True, text=True).stdout
            times.append(json.loads(out.strip().splitlines()[-1]))
    return {"compile_seconds": times[0], "cached_seconds": times[1], "dtypes": list(dtypes)}


BACKEND = NumbaBackend
