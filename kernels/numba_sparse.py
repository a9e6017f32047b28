"""The numba backend's sparse gathering: a batch's non-zero pixels, by row and by column.

About 81% of MNIST's pixels are exactly 0, so the layer-1 kernels
(:mod:`digitbench.kernels.numba_layers`) run over the non-zero ones only. A batch's
non-zero pixels are held twice, in a :class:`Sparse` tuple (as pynndescent keeps its
sparse kernels apart from the dense ones, they live in this module):

- by row (CSR): the entries of sample i are ``rv[row_ptr[i]:row_ptr[i + 1]]``, at pixels
  ``rj[...]``; the forward pass runs over these, sample by sample;
- by column (CSC): the entries of pixel j are ``vals[col_ptr[j]:col_ptr[j + 1]]``, from
  samples ``row_idx[...]``; the update of W1 runs over these, so that each row ``W1[j]``
  is read and written once per step while the rows of ``dz1`` it meets stay in L1 cache.
"""

from typing import NamedTuple

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import overload

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)


class Sparse(NamedTuple):
    """A batch of n samples' non-zero pixels in CSR and CSC form (capacity ``cap`` entries)."""

    row_ptr: np.ndarray  # (n + 1,) int64: sample i's entries are rj/rv[row_ptr[i]:row_ptr[i + 1]]
    rj: np.ndarray  # (cap,) int32: pixel of each CSR entry
    rv: np.ndarray  # (cap,) float: value of each CSR entry
    col_ptr: np.ndarray  # (785,) int64: pixel j's entries are row_idx/vals[col_ptr[j]:col_ptr[j + 1]]
    row_idx: np.ndarray  # (cap,) int32: sample of each CSC entry
    vals: np.ndarray  # (cap,) float: value of each CSC entry


@njit(cache=True)
def new_sparse(n, D, dtype):
    """Empty :class:`Sparse` buffers for up to n samples of D pixels, values of ``dtype``."""
    return Sparse(np.empty(n + 1, np.int64), np.empty(n * D, np.int32), np.empty(n * D, dtype),
                  np.empty(D + 1, np.int64), np.empty(n * D, np.int32), np.empty(n * D, dtype))


@njit(cache=True)
def sparse_from_uint8(images, words, rows, table, sp, with_csc=True):
    """Fill ``sp`` with the non-zero pixels of ``images[rows]``, scaled to [0, 1].

    Parameters
    ----------
    images : ndarray of shape (N, 784), uint8
    words : the same memory viewed as (N, 98) uint64, to skip 8 black pixels at a time
    rows : ndarray of shape (n,), int64, the batch's rows of ``images``
    table : ndarray of shape (256,), float, ``table[v] = v / 255`` in the parameters' dtype
    sp : Sparse with room for n samples, filled (CSR; CSC too if ``with_csc``)
    """
    row_ptr, rj, rv = sp.row_ptr, sp.rj, sp.rv
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
    if with_csc:
        csr_to_csc(rows.shape[0], images.shape[1], sp)


@njit(cache=True)
def dot_rows(first, last, sp, v, out):
    """out[i] = x_i . v in float64 over sample i's non-zero pixels, for samples first:last."""
    for i in range(first, last):
        s = 0.0
        for t in range(sp.row_ptr[i], sp.row_ptr[i + 1]):
            s += np.float64(sp.rv[t]) * np.float64(v[sp.rj[t]])
        out[i] = s


@njit(cache=True)
def touch_rows(words, rows):
    """Read one word of each 64-byte cache line of ``words[rows]`` and return their XOR.

    This brings the rows of a batch that will be gathered later into cache: the rows are
    scattered over 47 MB of images, and a gathering that meets them cold waits on memory.
    The loads are independent, so the CPU keeps many in flight.
    The caller keeps the result (in ``Workspace.touched``), so the compiler cannot drop
    the reads.
    """
    x = np.uint64(0)
    for i in range(rows.shape[0]):
        r = rows[i]
        for w in range(0, words.shape[1], 8):  # 8 words = 64 bytes
            x ^= words[r, w]
    return x


@njit(cache=True)
def sparse_from_float(X, sp, with_csc):
    """Fill ``sp`` with the non-zero entries of a float batch ``X`` of shape (n, 784).

    The CSC copy is filled only if ``with_csc`` (the forward pass needs only the CSR one).
    """
    row_ptr, rj, rv = sp.row_ptr, sp.rj, sp.rv
    D = X.shape[1]
    nonzero = np.zeros((D + 7) // 8 * 8, np.uint8)  # 1 where x != 0 (a vectorized pass) ...
    nonzero_words = nonzero.view(np.uint64)  # ... read 8 at a time: all-zero words are skipped
    c = 0
    for i in range(X.shape[0]):
        row_ptr[i] = c
        xi = X[i]
        for j in range(D):
            nonzero[j] = xi[j] != 0
        for w in range(nonzero_words.shape[0]):
            if nonzero_words[w] != 0:
                for j in range(8 * w, min(8 * w + 8, D)):
                    rj[c] = j  # written always, kept only if x != 0 (no branch)
                    rv[c] = xi[j]
                    c += np.int64(nonzero[j])  # (an int64 count in plain Python too)
    row_ptr[X.shape[0]] = c
    if with_csc:
        csr_to_csc(X.shape[0], X.shape[1], sp)


def trailing_zero_bits(x):
    """The number of 0 bits below the lowest 1 bit of x > 0: one instruction (tzcnt) when
    compiled (the overload below); this plain version runs under NUMBA_DISABLE_JIT."""
    x = int(x)
    return (x & -x).bit_length() - 1


@overload(trailing_zero_bits)
def _trailing_zero_bits_compiled(x):
    return lambda x: trailing_zeros(x)


@njit(cache=True)
def sparse_from_masks(X, nonzero_words, keep_words, sp):
    """Fill the CSR half of ``sp`` with the entries of X (n, 784) at the pixels both
    non-zero in their row and kept.

    ``nonzero_words`` (n, 98) uint64 and ``keep_words`` (98,) uint64 are byte masks (one
    byte per pixel, 0 or 1) read 8 pixels a word: a word's AND is 0 for most words, and
    in the others each set byte is found with one count of trailing zero bits.
    """
    row_ptr, rj, rv = sp.row_ptr, sp.rj, sp.rv
    c = 0
    for i in range(X.shape[0]):
        row_ptr[i] = c
        for w in range(keep_words.shape[0]):
            bits = nonzero_words[i, w] & keep_words[w]
            while bits != 0:
                j = 8 * w + (trailing_zero_bits(bits) >> 3)  # the lowest set byte
                rj[c] = j
                rv[c] = X[i, j]
                c += 1
                bits &= bits - np.uint64(1)  # its bit (the byte is 1) cleared
    row_ptr[X.shape[0]] = c


@njit(cache=True)
def csr_to_csc(n, D, sp):
    """Counting sort of the first n samples' CSR entries by pixel into the CSC arrays;
    within a pixel, samples stay in order."""
    csc_of_pixels(n, sp, 0, D)


@njit(cache=True)
def csc_of_pixels(n, sp, j0, j1):
    """The CSC entries of pixels j0:j1 only (:func:`csr_to_csc` restricted to them):
    ``col_ptr[j0 + 1:j1 + 1]`` (and ``col_ptr[0]`` if j0 = 0), and the entries' places
    between them. Ranges that cover 0:784 without overlap fill all of it, and each writes
    only its own places, so two threads can fill two ranges at once. Each range counts
    the entries below j0 itself (one more pass over the samples' entries).
    """
    row_ptr, rj, rv, col_ptr, row_idx, vals = sp
    fill = np.zeros(j1 - j0, np.int64)  # entries of each pixel, then each pixel's next place
    place = 0  # entries of pixels below j0: where pixel j0's begin
    for t in range(row_ptr[n]):
        j = rj[t]
        if j < j0:
            place += 1
        elif j < j1:
            fill[j - j0] += 1
    if j0 == 0:
        col_ptr[0] = 0
    for k in range(j1 - j0):
        count = fill[k]
        fill[k] = place
        place += count
        col_ptr[j0 + k + 1] = place
    for i in range(n):
        for t in range(row_ptr[i], row_ptr[i + 1]):
            j = rj[t]
            if j0 <= j < j1:
                k = fill[j - j0]
                row_idx[k] = i
                vals[k] = rv[t]
                fill[j - j0] = k + 1
