"""The convolutional network's compiled kernels, in the layout they run fastest in.

Layouts (``n`` images; every array C-contiguous)::

    activations  (n, H, W, C)         channels last: a pixel's C channels side by side
    input rows   (n, Hp, Wp * C)      a padded activation (n, Hp, Wp, C) seen as rows, so
                                      that one row of a kh x kw window, all its channels,
                                      is kw * C consecutive values
    weights      (O / 16, kh, kw * C, 16)   "blocked": W[o, c, u, v] (PyTorch's layout) at
                                      [o // 16, u, v * C + c, o % 16], so that the 16
                                      output channels of a block for one tap are consecutive

**The tile.** Each kernel computes a tile of 4 pixels (2 rows, 2 columns) times 16
output channels: 64 sums, held in a small array on the kernel's stack
(:func:`~.stack_row.stack_array`), which LLVM keeps in registers (8 AVX2 registers of
float32). For each tap, the kernel loads the 16 weights once and four input values
once, and does 64 multiply-adds: 8 fused multiply-add instructions for 6 loads. The
weights must be blocked for it: a block's 16 channels must be one contiguous 64-byte
run, not every other half of a 128-byte row. Compiled for a CPU with AVX-512
(:mod:`~.target_cpu`), the forward pass uses tiles of 8 pixels (2 rows, 4 columns)
while they fit: 8 registers of 16 sums, one fused multiply-add each per tap, enough
independent sums to keep both FMA units busy (4 would leave half of them idle).

dW's tile is 5 taps (consecutive values of a window row) times 16 output channels: 80
sums over all of an image's pixels, 10 fused multiply-adds for 5 broadcasts and 2 loads
a pixel.

**The same bits on any number of threads.** The forward pass and dX split the images
between the parts; the weight gradients split the tiles of dW (each part owns whole
tiles); every sum runs in one fixed order, whatever the split: over the images in
order, then rows, then columns. FASTMATH = {"contract"}: FMA, nothing else.
"""

import numpy as np
from numba import njit, prange

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)
from .stack_row import stack_array
from .target_cpu import IS_X86, has_avx512

FASTMATH = {"contract"}
#: Output channels per tile; a convolution runs on these kernels when its output
#: channels are a multiple of it and its output's rows and columns are even.
BLOCK = 16
#: A block of weights up to this many values (32 KB of float32: conv2's forward) is used
#: whole by each tile; a larger one (conv2's dX: 12,800) a window row at a time.
CACHED_WEIGHTS = 8192
#: Taps (consecutive values t of a window row) in a tile of dW: with 16 output channels,
#: 80 sums in 10 AVX2 registers, more than the 8 fused multiply-adds in flight that keep
#: both FMA units busy. A 5 x 5 window row is kw * C = 5 C taps: always a multiple of 5.
TAPS = 5
#: Whether the forward pass runs on tiles of 2 x 4 pixels (8 registers of sums: AVX-512's
#: 32 registers hold them with room to spare; AVX2's 16 would not), else of 2 x 2.
WIDE_TILES = has_avx512()


def fits_tiles(out_channels, height, width):
    """Whether a convolution with this output (channels, rows, columns) runs on the tiles."""
    return out_channels % BLOCK == 0 and height % 2 == 0 and width % 2 == 0


def fits_weight_tiles(out_channels, taps):
    """Whether dW of a convolution with these output channels and kw * C taps a window
    row runs on the tiles (:data:`TAPS` taps a tile: a multiple of it)."""
    return out_channels % BLOCK == 0 and taps % TAPS == 0


@njit(cache=True, fastmath=FASTMATH, inline="always")
def correlate_tile(rows, i, r, s, C, Wb, ob, u_first, u_last, b, Y):
    """Adds window rows u_first..u_last-1's taps to Y[i, r:r+2, s:s+2, 16 ob : 16 ob + 16]
    (to b when u_first = 0): the sum over u, then t of rows[i, r + dr + u, (s + ds) C + t]
    * Wb[ob, u, t] for the tile's 4 pixels (dr, ds), t = v C + c running over the window
    row's kw * C values."""
    acc = stack_array(Y, 64)  # acc[16 q + o]: pixel q = (0, 0), (0, 1), (1, 0), (1, 1)
    o0 = ob * BLOCK
    for o in range(16):
        if u_first == 0:
            acc[o] = acc[16 + o] = acc[32 + o] = acc[48 + o] = b[o0 + o]
        else:
            acc[o], acc[16 + o] = Y[i, r, s, o0 + o], Y[i, r, s + 1, o0 + o]
            acc[32 + o], acc[48 + o] = Y[i, r + 1, s, o0 + o], Y[i, r + 1, s + 1, o0 + o]
    for u in range(u_first, u_last):
        top, top_right = rows[i, r + u, s * C:], rows[i, r + u, (s + 1) * C:]
        low, low_right = rows[i, r + u + 1, s * C:], rows[i, r + u + 1, (s + 1) * C:]
        w = Wb[ob, u]
        for t in range(w.shape[0]):
            x0, x1, x2, x3 = top[t], top_right[t], low[t], low_right[t]
            for o in range(16):
                acc[o] += x0 * w[t, o]
                acc[16 + o] += x1 * w[t, o]
                acc[32 + o] += x2 * w[t, o]
                acc[48 + o] += x3 * w[t, o]
    for o in range(16):
        Y[i, r, s, o0 + o] = acc[o]
        Y[i, r, s + 1, o0 + o] = acc[16 + o]
        Y[i, r + 1, s, o0 + o] = acc[32 + o]
        Y[i, r + 1, s + 1, o0 + o] = acc[48 + o]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def correlate_wide_tile(rows, i, r, s, C, Wb, ob, u_first, u_last, b, Y):
    """:func:`correlate_tile` for a tile of 2 rows x 4 columns (8 x 16 sums, in 8 AVX-512
    registers), the same sums in the same order. Its pixels are written out one by one,
    as there: written as a loop over the tile's columns, the same sums compiled to
    scalar code with the sums in memory, about ten times slower."""
    acc = stack_array(Y, 128)  # acc[16 q + o]: pixel q = (0, 0..3), (1, 0..3)
    o0 = ob * BLOCK
    for q in range(8):
        for o in range(16):
            acc[16 * q + o] = b[o0 + o] if u_first == 0 else Y[i, r + q // 4, s + q % 4, o0 + o]
    for u in range(u_first, u_last):
        t0, t1, t2, t3 = rows[i, r + u, s * C:], rows[i, r + u, (s + 1) * C:], rows[i, r + u, (s + 2) * C:], \
            rows[i, r + u, (s + 3) * C:]
        l0, l1, l2, l3 = rows[i, r + u + 1, s * C:], rows[i, r + u + 1, (s + 1) * C:], \
            rows[i, r + u + 1, (s + 2) * C:], rows[i, r + u + 1, (s + 3) * C:]
        w = Wb[ob, u]
        for t in range(w.shape[0]):
            x0, x1, x2, x3, x4, x5, x6, x7 = t0[t], t1[t], t2[t], t3[t], l0[t], l1[t], l2[t], l3[t]
            for o in range(16):
                acc[o] += x0 * w[t, o]
                acc[16 + o] += x1 * w[t, o]
                acc[32 + o] += x2 * w[t, o]
                acc[48 + o] += x3 * w[t, o]
                acc[64 + o] += x4 * w[t, o]
                acc[80 + o] += x5 * w[t, o]
                acc[96 + o] += x6 * w[t, o]
                acc[112 + o] += x7 * w[t, o]
    for q in range(8):
        for o in range(16):
            Y[i, r + q // 4, s + q % 4, o0 + o] = acc[16 * q + o]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def correlate(rows, C, Wb, b, Y, threads):
    """Y[i, r, s, o] = b[o] + sum_{u, v, c} Xp[i, r + u, s + v, c] W[o, c, u, v], all of it.

    When a block's weights are more than :data:`CACHED_WEIGHTS` values, one window row u
    at a time over all of an image's tiles, so that the weights in use (one row's:
    kw * C * 16 values) stay in the L1 cache; each sum still runs bias, then u, then t in
    order.

    Parameters
    ----------
    rows : (n, Hp, Wp * C), the padded input as rows
    C : int, its channels
    Wb : (O / 16, kh, kw * C, 16), the blocked weights
    b : (O,)
    Y : (n, Ho, Wo, O), filled; Ho, Wo even
    threads : int, parts (split by images)
    """
    n, Ho, Wo, kh = Y.shape[0], Y.shape[1], Y.shape[2], Wb.shape[1]
    step = kh if Wb[0].size <= CACHED_WEIGHTS else 1  # window rows a pass
    wide = Wo // 4 if WIDE_TILES else 0  # tiles of 2 x 4, then of 2 x 2
    for part in prange(threads):
        for i in range(part * n // threads, (part + 1) * n // threads):
            for ob in range(Wb.shape[0]):
                for u in range(0, kh, step):
                    for r in range(0, Ho, 2):
                        for k in range(wide):
                            correlate_wide_tile(rows, i, r, 4 * k, C, Wb, ob, u, u + step, b, Y)
                        for s in range(4 * wide, Wo, 2):
                            correlate_tile(rows, i, r, s, C, Wb, ob, u, u + step, b, Y)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def weight_grad_tile(x, C, g, at, plane, ob, u, t0, i, dWb):
    """dWb[ob, u, t0 + j] += sum over r, s of X[i, r + u, s C + t0 + j] dY[i, r, s, block ob]
    for the 5 taps j, image i (from 0 when i = 0).

    x and g are the padded input rows and the padded dY, flattened; ``at`` (unsigned
    offsets and strides, :func:`weight_grads`) finds a pixel in them. Every index is
    unsigned: numba checks a signed index for a negative value (counting from the end)
    at each access, which kept this loop from compiling to its 10 fused multiply-adds
    for 5 broadcasts and 2 loads a pixel.
    """
    x_image, x_row, g_image, g_row, g_pixel = at
    acc = stack_array(dWb, 80)  # acc[16 j + o]
    for j in range(TAPS):
        for o in range(16):
            acc[16 * j + o] = 0 if i == 0 else dWb[ob, u, t0 + j, o]
    x_first = np.uint64(i) * x_image + np.uint64(u) * x_row + np.uint64(t0)
    g_first = np.uint64(i) * g_image + np.uint64(ob * BLOCK)
    stride = np.uint64(C)
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)  # uint64 + int: a float
    for r in range(plane[0]):
        xr = x_first + np.uint64(r) * x_row
        gr = g_first + np.uint64(r) * g_row
        for s in range(plane[1]):
            xs = xr + np.uint64(s) * stride
            gs = gr + np.uint64(s) * g_pixel
            x0, x1, x2, x3, x4 = x[xs], x[xs + one], x[xs + two], x[xs + three], x[xs + four]
            for o in range(16):
                go = g[gs + np.uint64(o)]
                acc[o] += x0 * go
                acc[16 + o] += x1 * go
                acc[32 + o] += x2 * go
                acc[48 + o] += x3 * go
                acc[64 + o] += x4 * go
    for j in range(TAPS):
        for o in range(16):
            dWb[ob, u, t0 + j, o] = acc[16 * j + o]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def weight_grads(rows, C, dYp, p, dWb, db, threads):
    """dW[o, c, u, v] = sum_{i, r, s} Xp[i, r + u, s + v, c] dY[i, r, s, o] into the blocked
    dWb, and db[o] = sum_{i, r, s} dY[i, r, s, o].

    Parameters
    ----------
    rows : (n, Hp, Wp * C), the padded input of the convolution as rows
    C : int, its channels
    dYp : (n, Ho + 2p, Wo + 2p, O), dY inside a buffer padded by p on each side
    p : int
    dWb : (O / 16, kh, kw * C, 16), filled; kw * C a multiple of :data:`TAPS`
    db : (O,), filled (by the first part)
    threads : int, parts; the tiles (ob, u, 5 taps) are split between them. Each part
        runs through the images in order, adding each image to all of its tiles (whose
        sums stay in dWb between images), so that one image's input and gradient stay in
        the cache while they are used.
    """
    blocks, kh, taps = dWb.shape[0], dWb.shape[1], dWb.shape[2]
    groups = taps // TAPS
    tiles = blocks * kh * groups
    n, Hp, Wp, O = dYp.shape
    x, g = rows.reshape(rows.size), dYp.reshape(dYp.size)  # views: both are C-contiguous
    u64 = np.uint64
    at = (u64(rows.shape[1] * rows.shape[2]), u64(rows.shape[2]),  # x: an image, a row
          u64(Hp * Wp * O), u64(Wp * O), u64(O))  # g: an image, a row, a pixel
    g = g[(p * Wp + p) * O:]  # dY[:, 0, 0] first
    plane = (Hp - 2 * p, Wp - 2 * p)
    for part in prange(threads):
        for i in range(n):
            for k in range(part * tiles // threads, (part + 1) * tiles // threads):
                ob, u, t0 = k // (kh * groups), k // groups % kh, k % groups * TAPS
                weight_grad_tile(x, C, g, at, plane, ob, u, t0, i, dWb)
        if part == 0:
            db[:] = 0
            for i in range(n):
                for r in range(p, Hp - p):
                    for s in range(p, Wp - p):
                        for o in range(db.shape[0]):
                            db[o] += dYp[i, r, s, o]


@njit(cache=True, inline="always")
def window_max(z0, z1, z2, z3):
    """The largest of a 2x2 window's values in row-major order z0 (top left), z1, z2, z3,
    and its place 0..3: the first of equal largest ones (a later value replaces only if
    strictly greater, so a NaN never wins)."""
    best, q = z0, 0
    if z1 > best:
        best, q = z1, 1
    if z2 > best:
        best, q = z2, 2
    if z3 > best:
        best, q = z3, 3
    return best, q


@njit(parallel=True, cache=True)
def relu_pool(Z, out, p, channels_first, threads):
    """ReLU, then 2x2 max pool: out = max(0, max of each window of Z).

    Z (n, H, W, C). ``out`` is (n, H/2 + 2p, W/2 + 2p, C), filled inside its border of p
    (the next convolution's padded input), or with ``channels_first`` (n, C, H/2, W/2)
    (p = 0), the order in which PyTorch's Flatten reads it. Max and ReLU commute: the
    window's winner is found on Z, and is the winner of ReLU(Z) too whenever it is
    positive. The innermost loop runs over the channels, contiguous in Z.
    """
    n, Ho, Wo, C = Z.shape[0], Z.shape[1] // 2, Z.shape[2] // 2, Z.shape[3]
    for part in prange(threads):
        for i in range(part * n // threads, (part + 1) * n // threads):
            for r in range(Ho):
                for s in range(Wo):
                    z0, z1 = Z[i, 2 * r, 2 * s], Z[i, 2 * r, 2 * s + 1]
                    z2, z3 = Z[i, 2 * r + 1, 2 * s], Z[i, 2 * r + 1, 2 * s + 1]
                    if channels_first:
                        for c in range(C):
                            z = window_max(z0[c], z1[c], z2[c], z3[c])[0]
                            out[i, c, r, s] = 0 if z <= 0 else z
                    else:
                        a = out[i, r + p, s + p]
                        for c in range(C):
                            z = window_max(z0[c], z1[c], z2[c], z3[c])[0]
                            a[c] = 0 if z <= 0 else z


@njit(parallel=True, cache=True)
def relu_pool_backward(dA, Z, dZp, p, channels_first, threads):
    """dZ = the gradient of ReLU then 2x2 max pool: each window's dA goes to its winner when
    Z there is positive; every other entry is 0.

    dA is (n, H/2, W/2, C), or with ``channels_first`` (n, C, H/2, W/2); Z (n, H, W, C);
    dZp (n, H + 2p, W + 2p, C) is filled inside its border of p (its border is left as it is).
    The innermost loop runs over a window's C channels, indexed directly (no slices),
    each of the four results chosen without a branch, so that it compiles to vector code.
    """
    n, Ho, Wo, C = Z.shape[0], Z.shape[1] // 2, Z.shape[2] // 2, Z.shape[3]
    for part in prange(threads):
        for i in range(part * n // threads, (part + 1) * n // threads):
            for r in range(Ho):
                top, low, top_out, low_out = 2 * r, 2 * r + 1, 2 * r + p, 2 * r + 1 + p
                for s in range(Wo):
                    left, right, left_out, right_out = 2 * s, 2 * s + 1, 2 * s + p, 2 * s + 1 + p
                    for c in range(C):
                        z, q = window_max(Z[i, top, left, c], Z[i, top, right, c], Z[i, low, left, c],
                                          Z[i, low, right, c])
                        g = dA[i, c, r, s] if channels_first else dA[i, r, s, c]
                        g = g if z > 0 else 0
                        dZp[i, top_out, left_out, c] = g if q == 0 else 0
                        dZp[i, top_out, right_out, c] = g if q == 1 else 0
                        dZp[i, low_out, left_out, c] = g if q == 2 else 0
                        dZp[i, low_out, right_out, c] = g if q == 3 else 0


@njit(cache=True)
def block_weights(W, flip, Wb):
    """Wb (O / 16, kh, kw * C, 16) = W (O, C, kh, kw) blocked; with ``flip``, the kernel of
    dX instead: W with its channels swapped and its window turned by 180 degrees,
    Wf[c, o, u, v] = W[o, c, kh-1-u, kw-1-v], blocked (then Wb is (C / 16, kh, kw * O, 16))."""
    O, C, kh, kw = W.shape
    for o in range(O):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    if flip:
                        Wb[c // BLOCK, kh - 1 - u, (kw - 1 - v) * O + o, c % BLOCK] = W[o, c, u, v]
                    else:
                        Wb[o // BLOCK, u, v * C + c, o % BLOCK] = W[o, c, u, v]


@njit(cache=True)
def unblock_weights(Wb, W):
    """W (O, C, kh, kw) = the blocked Wb (O / 16, kh, kw * C, 16), the inverse of
    :func:`block_weights` without ``flip``."""
    O, C, kh, kw = W.shape
    for o in range(O):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    W[o, c, u, v] = Wb[o // BLOCK, u, v * C + c, o % BLOCK]
