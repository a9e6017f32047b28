"""The Numba backend: jitted loop kernels, the fast one.

Layout follows umap-learn / pynndescent: module-level kernels that only fill arrays they
are given, and a :class:`NumbaBackend` whose public methods check the arguments, allocate
the buffers and call the kernels. The kernels live by concern:

==================  ==============================================================
module              what it holds
==================  ==============================================================
``numba_sparse``    a batch's non-zero pixels, gathered in CSR and CSC form
``numba_layers``    forward and backward layers, the fused update of W1
``numba_train``     the training loop: chunks of steps in one call, N threads
``stack_row``       a 128-wide row on a kernel's stack, which LLVM keeps in registers
``numba_infer``     forward and predict for any number of rows, without BLAS
``denormals``       flush-to-zero inside the kernels
==================  ==============================================================

Where the speed comes from
--------------------------
- **Sparse inputs.** About 81% of MNIST's pixels are exactly 0, so ``z1 = X @ W1`` is
  computed, for each sample, as a sum over its *non-zero* pixels ``j`` of
  ``x_j * W1[j, :]`` (a 128-wide vector operation, summed in registers: see
  ``stack_row``), and
  ``dW1 = X.T @ dz1`` as the matching sum over the samples in which pixel ``j`` is
  non-zero. That is ~5x fewer multiply-adds than the dense products; a dense input is
  still handled correctly, it just gains nothing.
- **Whole chunks in one compiled call** (:func:`~.numba_train.train_steps`): each step
  gathers its rows straight from the uint8 images (skipping all-black 8-pixel words,
  scaling by a 256-entry table equal to ``v / 255``); buffers are allocated once a call.
- **Fused update of W1.** With momentum ``m`` the step is ``v <- m v + g;
  W <- W - lr v``; :func:`~.numba_layers.sgd_update_sparse` does it row by row, adding
  ``g``'s row from the batch's non-zero pixels on the way, so ``dW1`` never exists as a
  dense array and each row of ``v`` and ``W1`` is read and written once per step.
- **BLAS for the small dense layers in training.** ``a1 @ W2``, ``a2 @ W3`` and their
  gradients are ``np.dot`` calls, which numba sends to SciPy's BLAS, held to one thread
  by the caller (:func:`digitbench.threads.blas_single_thread`, for every batch size:
  :attr:`NumbaBackend.single_thread_blas_batch`): a second one only waits on products this small.
- **Flush-to-zero** inside the kernels (``kernels/denormals.py``): decaying momentum
  would otherwise leave thousands of W1's velocities subnormal, ~100x slower each.
- **Any number of threads, bit-identical results**, three parallel regions per step
  (:mod:`~.numba_train`), in ``threads`` parts given by the caller (a training run
  chooses the count by measurement: :mod:`digitbench.threads`).
- **Inference chosen by size** (:mod:`~.numba_infer`): without BLAS (sparse in all
  three layers) for small batches, where one-image latency is all call overhead; BLAS
  on the pixels used in each block of 256 rows for large ones; one part of the rows
  per thread from 32 rows on.

The kernels use ``fastmath={"contract"}`` only (``a * b + c`` may become one FMA,
rounded once), and agree with the NumPy backend to rounding error
(tests/test_agreement.py). With ``NUMBA_DISABLE_JIT=1`` the same code runs as plain
Python (slowly), flush-to-zero included, and agrees with the compiled one.

Compilation
-----------
The kernels are generic over float32 and float64 and compiled on first use per dtype,
with ``cache=True`` so that later processes load the machine code from the cache
(:mod:`~.numba_cache`: keyed by the sources of every kernel module, so that editing any
kernel recompiles every function, including those that inline it).
:meth:`NumbaBackend.warmup` triggers (and times) that compilation, so that callers can
keep it out of timed regions; :func:`compile_report` measures the first-call (compile)
and cached start times in fresh processes.
"""

import time

import numpy as np

from digitbench.params import Params, init_params, zeros_like_params

from .base import Backend, settle_ties
from .numba_cache import kernels_cached
from .numba_cnn import NumbaCnnBackend
from .numba_infer import argmax_rows, forward_into
from .numba_layers import dense_backward, dense_forward, linear_backward_sparse, linear_forward_sparse, new_acts
from .numba_sparse import new_sparse, sparse_from_float
from .numpy_backend import forward_cache
from .numba_train import Images, new_workspace, train_steps


def _check_params(params, what="parameters"):
    dtype = params.W1.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"numba backend: {what} must be float32 or float64, not {dtype}")
    for name, a in zip(Params._fields, params):
        if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
            raise TypeError(f"numba backend: {what} {name} must be a writeable C-contiguous {dtype} array")
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
    #: Rows per block in :meth:`forward` (buffers of one block stay in cache).
    block = 64
    parallel = True
    #: Every batch trains with BLAS on one thread (the dense layers' products are small).
    single_thread_blas_batch = float("inf")

    def forward(self, params, X, threads=1):
        """Probabilities (n, 10), in ``threads`` parts (more than one: the caller holds
        BLAS at one thread, :func:`digitbench.threads.blas_single_thread`)."""
        dtype = _check_params(params)
        X = _as_batch(X, dtype)
        p = np.empty((len(X), 10), dtype)
        forward_into(X, params, p, self.block, int(threads))
        return p

    def predict(self, params, X, chunk=None, threads=1):
        """Predicted labels (n,) as int64: argmax of :meth:`forward`, in one compiled pass
        (rows of tied probabilities decided by the logits: :func:`base.settle_ties`)."""
        p = self.forward(params, X, threads)
        labels = np.empty(len(p), np.int64)
        argmax_rows(p, labels)
        return settle_ties(self, params, X, p, labels)

    def logits(self, params, X):
        """The logits (n, 10) by NumPy's BLAS products (:func:`numpy_backend.forward_cache`):
        for the rows ``predict`` cannot decide by their probabilities."""
        dtype = _check_params(params)
        return forward_cache(params, _as_batch(X, dtype))[-1]

    def loss_and_grads(self, params, X, y):
        dtype = _check_params(params)
        W1 = params.W1
        X = _as_batch(X, dtype)
        y = _readonly(np.ascontiguousarray(y, dtype=np.int64))
        n = len(X)
        if n == 0 or y.shape != (n,) or y.min() < 0 or y.max() > 9:
            raise ValueError("numba backend: y must hold one label in 0..9 per row of X (n >= 1)")
        sp = new_sparse(n, X.shape[1], dtype)
        sparse_from_float(X, sp, True)
        acts = new_acts(n, 128, 64, 10, dtype)
        grads = Params(*(np.zeros_like(a) if i == 0 else np.empty_like(a) for i, a in enumerate(params)))
        linear_forward_sparse(0, n, sp, W1, params.b1, acts.z1)  # z1 = X @ W1 + b1
        dense_forward(n, params, acts)
        loss = dense_backward(n, y, params, acts, grads)
        linear_backward_sparse(sp, acts.dz1, grads.W1, 0, W1.shape[0])  # dW1 = X.T @ dz1
        return float(loss / n), grads

    def new_workspace(self, batch_size, params):
        """:func:`~.numba_train.train_steps`'s buffers for this batch size and dtype: a run
        keeps them from call to call (fresh pages cost a fault each on first touch)."""
        _check_params(params)
        return new_workspace(int(batch_size), params)

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """SGD steps as :meth:`Backend.train_batches`, in one compiled call whose parallel
        regions have ``threads`` parts (the results do not depend on it); ``workspace``
        from :meth:`new_workspace` (None: fresh buffers). The caller holds BLAS at one
        thread (:func:`digitbench.threads.blas_single_thread`)."""
        dtype = _check_params(params)
        _check_params(velocity, "velocity")
        if velocity.W1.dtype != dtype:
            raise TypeError(f"numba backend: velocity must be {dtype} like the parameters")
        images = np.ascontiguousarray(images, dtype=np.uint8)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        order = np.ascontiguousarray(order, dtype=np.int64)
        lrs = np.ascontiguousarray(lrs, dtype=np.float64)
        steps, B = len(lrs), int(batch_size)
        if len(order) < (steps - 1) * B + 1:
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
        data = Images(images, words, _readonly(table), labels)
        momentum = dtype.type(momentum)
        if mean is None:
            mean = _readonly(np.empty(0, dtype))  # not centred
        else:
            mean = _readonly(np.ascontiguousarray(mean, dtype=dtype))
            if mean.shape != (images.shape[1],):
                raise ValueError(f"numba backend: mean must have shape ({images.shape[1]},), not {mean.shape}")
        if workspace is None:
            workspace = new_workspace(B, params)
        train_steps(params, velocity, data, order, B, lrs, momentum, losses, int(threads), workspace, mean)
        return losses

    def kernels_cached(self, dtypes=(np.float32,)):
        """True when numba's cache holds every kernel for ``dtypes``: :meth:`warmup` loads, not compiles."""
        return kernels_cached(dtypes)

    def warmup(self, dtypes=(np.float32,)):
        """Compile (or load from the cache) every kernel for ``dtypes``; return the seconds taken.

        Call it before timing anything: the first call of a jitted function compiles it
        or loads it from numba's on-disk cache; after that, calls cost nothing extra.
        """
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(4, 784), dtype=np.uint8)
        labels = np.arange(4, dtype=np.int64)
        for dtype in dtypes:
            params = init_params(0, dtype)
            X = images.astype(dtype) / 255
            self.predict(params, X[:1])  # forward_serial
            self.predict(params, np.repeat(X, 8, axis=0), threads=2)  # forward_parallel (32 rows)
            self.predict(params, np.repeat(X, 64, axis=0))  # forward_dense_parallel (256 rows)
            self.loss_and_grads(params, X, labels)
            self.train_batches(params, zeros_like_params(params), images, labels,
                               np.arange(4, dtype=np.int64), 2, np.array([0.0, 0.0]), 0.9)
        return time.perf_counter() - t0


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
#: The other networks' numba backends (:func:`digitbench.backends.get_backend`).
NETWORK_BACKENDS = {"cnn": NumbaCnnBackend}
