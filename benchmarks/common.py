"""Profiles, threads, data builders and the machine reference shared by the asv benchmarks.

APPEND, NEVER CHANGE. asv compares each benchmark with its own history; changing what a
builder returns (its seed, its size, its source), a recipe, or the frozen reference step
silently moves every figure that uses it, and the history stops meaning anything. Add a
new builder (``batch_v2``) or a new benchmark name instead.

The benchmarks run against old commits too, so they use only the public contract of
``digitbench`` (``load_mnist``, ``init_params``, ``get_backend``, ``BACKENDS``,
``Params``, and a backend's ``forward``, ``loss_and_grads``, ``predict``,
``train_batches``) and guard anything newer (``warmup``, ``steps_per_call``).

Profiles
--------
``DIGITBENCH_BENCH_PROFILE=fast`` (CI and smoke tests) shrinks the parameter grids and
the "epoch" (6,000 samples instead of 60,000) and trains the seed recipe for 3 epochs
instead of 30. Every benchmark's first parameter is ``profile`` (:data:`PROFILES`), so
fast and full figures are stored as different series and never compared.

Threads
-------
``benchmarks/__init__.py`` sizes the pools before NumPy is imported; every benchmark
calls :func:`hold_threads` at the end of its ``setup`` (after compiling, which may load
another pool) and refuses to run if a pool is not at the count it asked for.

Data
----
The real MNIST files are looked for in ``$DIGITBENCH_DATA``, then in ``shared/mnist``
beside the repository (``$ASV_CONF_DIR/../shared/mnist``), then in digitbench's per-user
cache; nothing is downloaded. Without them, timing benchmarks use a seeded synthetic set
of the same shape and sparsity (speed does not depend on the pixel values), and the
accuracy benchmarks are skipped.
"""

import functools
import inspect
import math
import os
import sys
from pathlib import Path

import numpy as np

from . import CORES, THREADS

PROFILE = os.environ.get("DIGITBENCH_BENCH_PROFILE", "full")
if PROFILE not in ("full", "fast"):
    raise ValueError(f"DIGITBENCH_BENCH_PROFILE must be 'full' or 'fast', not {PROFILE!r}")
FAST = PROFILE == "fast"
#: The first parameter of every benchmark: the profile's name, one value per run.
PROFILES = (PROFILE,)

#: Every backend the project means to have; one not (yet) registered is skipped.
ALL_BACKENDS = ("naive", "numpy", "numba")
#: The backends fast enough to run epochs and train.
TRAINABLE = ("numpy", "numba")
#: The naive backend runs pure Python loops (tens of ms per sample): never more than this.
NAIVE_MAX_BATCH = 64
#: The ``threads`` parameter of the epoch benchmark: one, and every core.
THREAD_COUNTS = tuple(sorted({1, CORES}))

#: Samples in one timed "epoch": the whole training set, or a tenth in the fast profile.
EPOCH_SAMPLES = 6_000 if FAST else 60_000
DTYPE = np.float32


# --------------------------------------------------------------------------- threads


def hold_threads(n):
    """Hold every BLAS/OpenMP pool loaded so far, and numba's, at ``n`` threads.

    Raises
    ------
    RuntimeError, one line, when a pool cannot be held at ``n`` (threadpoolctl missing,
    numba started with fewer threads): never measure silently at another count.
    """
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        raise RuntimeError("cannot hold the thread count: threadpoolctl is not installed in the benchmark "
                           "environment (tools/asv_env.py installs it)") from None
    threadpool_limits(limits=n)
    wrong = [f"{p.get('internal_api')}={p.get('num_threads')}" for p in threadpool_info()
             if p.get("num_threads") != n]
    numba = sys.modules.get("numba")
    if numba is not None:
        if n <= numba.config.NUMBA_NUM_THREADS:
            numba.set_num_threads(n)
        if numba.get_num_threads() != n:
            wrong.append(f"numba={numba.get_num_threads()} (pool of {numba.config.NUMBA_NUM_THREADS})")
    if wrong:
        raise RuntimeError(f"cannot hold {n} thread(s): {', '.join(wrong)}; import the benchmarks "
                           "package before NumPy and numba, with DIGITBENCH_BENCH_THREADS set")


# --------------------------------------------------------------------------- backends


def backend_or_skip(name, batch_size=None, threads=THREADS):
    """The registered backend ``name``, compiled, with threads held; NotImplementedError skips.

    Skipped: a backend this commit does not have or cannot import (a missing undeclared
    dependency: one line instead of a traceback per benchmark), and the naive backend
    on batches larger than :data:`NAIVE_MAX_BATCH` (pass ``batch_size=None`` for
    whole-data runs, which are never given to it).
    """
    import digitbench

    if name not in digitbench.BACKENDS:
        raise NotImplementedError(f"backend {name!r} is not in this commit")
    if name == "naive" and (batch_size is None or batch_size > NAIVE_MAX_BATCH):
        raise NotImplementedError("the naive backend is too slow for this benchmark")
    try:
        backend = digitbench.get_backend(name)
        hold_threads(threads)
        warm_up(backend)
    except ImportError as e:  # a dependency the commit uses but does not declare
        raise NotImplementedError(f"backend {name!r} cannot run at this commit: {e}") from None
    hold_threads(threads)  # again: compiling may have loaded another pool (numba's OpenMP)
    return backend


def call_warmup(backend, dtypes=(DTYPE,)):
    """``backend.warmup`` if it has one: ``warmup()`` on old commits, ``warmup(dtypes)`` on new."""
    warmup = getattr(backend, "warmup", None)
    if warmup is None:
        return
    required = [p for p in inspect.signature(warmup).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    warmup(dtypes) if required else warmup()


def warm_up(backend, dtype=DTYPE):
    """Compile whatever a backend compiles, so that no timed call pays for it.

    ``warmup`` where it exists (numba compiles there), then each operation the
    benchmarks time, once on two samples, in ``dtype``.
    """
    call_warmup(backend, (dtype,))
    X, y = batch(2, dtype)
    p = params(dtype)
    backend.forward(p, X)
    backend.loss_and_grads(p, X, y)
    images, labels = train_arrays()
    run_steps(backend, p, zeros_like(p), images, labels, np.arange(2, dtype=np.int64), 2, 1)


def steps_per_call(backend, steps):
    """How many steps one ``train_batches`` call may take: ``steps`` unless the backend says fewer
    (``steps_per_call`` on new commits, ``max_steps_per_call`` on old ones)."""
    limit = getattr(backend, "steps_per_call", None) or getattr(backend, "max_steps_per_call", None)
    return max(1, min(steps, int(limit))) if limit else max(1, steps)


# --------------------------------------------------------------------------- data


def _candidate_dirs():
    env = os.environ.get("DIGITBENCH_DATA")
    if env:
        yield Path(env)
    conf_dir = os.environ.get("ASV_CONF_DIR")  # set by asv: the repository root
    if conf_dir:
        yield Path(conf_dir).parent / "shared" / "mnist"
    yield Path(__file__).resolve().parents[1].parent / "shared" / "mnist"
    try:
        from digitbench.data import default_cache_dir

        yield default_cache_dir() / "mnist"
    except ImportError:
        pass


@functools.lru_cache(maxsize=None)
def mnist():
    """The real MNIST data set (Xtr, ytr, Xte, yte), or None when no copy is found."""
    import digitbench

    for folder in _candidate_dirs():
        if folder.is_dir():
            try:  # ``download`` has been an argument since the first commit
                return tuple(digitbench.load_mnist(folder, download=False))
            except Exception:  # a broken or partial copy: try the next place
                continue
    return None


@functools.lru_cache(maxsize=None)
def synthetic(n_train=60_000, n_test=10_000, seed=1234):
    """A seeded stand-in for MNIST: uint8 (n, 784) images with MNIST's ~81% zero pixels.

    Returns (Xtr, ytr, Xte, yte) like :func:`mnist`; labels are uniform over 0..9.
    """
    rng = np.random.default_rng(seed)

    def images(n):
        pixels = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
        pixels[rng.random((n, 784)) < 0.81] = 0
        return pixels

    return images(n_train), rng.integers(0, 10, n_train).astype(np.uint8), \
        images(n_test), rng.integers(0, 10, n_test).astype(np.uint8)


def dataset():
    """Real MNIST if found, else :func:`synthetic`."""
    return mnist() or synthetic()


def train_arrays():
    """(images uint8 (60000, 784), labels int64 (60000,)) of :func:`dataset`."""
    Xtr, ytr, _, _ = dataset()
    return Xtr, np.ascontiguousarray(ytr, dtype=np.int64)


@functools.lru_cache(maxsize=None)
def test_set(dtype=DTYPE):
    """(X (10000, 784) scaled to [0, 1] in ``dtype``, y int64 (10000,)) of :func:`dataset`."""
    _, _, Xte, yte = dataset()
    return np.ascontiguousarray(Xte, dtype=dtype) / 255, np.asarray(yte, dtype=np.int64)


@functools.lru_cache(maxsize=None)
def batch(n, dtype=DTYPE):
    """The first ``n`` training samples: (X (n, 784) in [0, 1], y int64 (n,))."""
    Xtr, ytr = train_arrays()
    return np.ascontiguousarray(Xtr[:n], dtype=dtype) / 255, ytr[:n].copy()


def params(dtype=DTYPE, seed=0):
    """Fresh He-initialised parameters (``digitbench.init_params(seed=0)``)."""
    import digitbench

    return digitbench.init_params(seed=seed, dtype=dtype)


def zeros_like(p):
    """Zero arrays shaped like ``p`` (the momentum buffer), as a ``Params``."""
    return type(p)(*(np.zeros_like(w) for w in p))


def epoch_order(n=EPOCH_SAMPLES, seed=0):
    """The row order of one timed epoch: a seeded permutation of the first ``n`` rows."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


# --------------------------------------------------------------------------- training


def trainer(backend):
    """What calls ``train_batches``: a run with digitbench's thread policy (every step on
    the threads :func:`hold_threads` holds, BLAS as the trainer holds it) on commits that
    have one (``digitbench.threads.RunThreads``), else the backend itself."""
    try:
        from digitbench.threads import RunThreads
    except ImportError:
        return backend
    return RunThreads(backend, adaptive=False)


def predictor(backend):
    """``predict(weights, X)`` on the threads :func:`hold_threads` holds, on commits whose
    backends take ``threads`` (``digitbench.threads.inference_threads``), else the backend's."""
    try:
        from digitbench.threads import inference_threads
    except ImportError:
        return backend.predict

    def predict(weights, X):
        with inference_threads(backend) as threads:
            return backend.predict(weights, X, threads=threads)

    return predict


def run_steps(backend, p, velocity, images, labels, order, batch_size, steps, lr=0.01, momentum=0.9):
    """``steps`` SGD steps of ``batch_size`` rows of ``order`` through ``backend.train_batches``
    (by :func:`trainer`).

    At most a quarter of the steps per call (as the trainer hands them over), and no
    more than the backend's :func:`steps_per_call`. Returns the losses, shape (steps,).
    """
    lrs = np.full(steps, lr)
    chunk = steps_per_call(backend, math.ceil(steps / 4))
    run = trainer(backend)
    losses = []
    for first in range(0, steps, chunk):
        k = min(chunk, steps - first)
        losses.append(run.train_batches(p, velocity, images, labels,
                                            order[first * batch_size:(first + k) * batch_size],
                                            batch_size, lrs[first:first + k], momentum))
    return np.concatenate(losses)


def epoch_peak_mb(run):
    """Peak resident memory that ``run()`` adds above the resident memory before it, in MB.

    Linux: writing 5 to ``/proc/self/clear_refs`` resets the peak (``VmHWM``) to the
    current resident size, so what is read after ``run()`` is its own peak, not that of
    loading data or compiling. MB = 10**6 bytes, rounded to 0.1.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        raise NotImplementedError(f"cannot reset the peak resident size here ({e})") from None
    before = _status_kib("VmRSS")
    run()
    return round((_status_kib("VmHWM") - before) * 1024 / 1e6, 1)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise NotImplementedError(f"/proc/self/status has no {field}")


# --------------------------------------------------------------------------- machine reference
# FROZEN: the reference step below is the machine's yardstick. Never edit it: a changed
# yardstick moves every ratio in history. Write reference_step_v2 instead.


def reference_step(p, v, X, y, lr=0.01, momentum=0.9):
    """One SGD step with momentum of the 784-128-64-10 MLP in plain NumPy, in place (FROZEN).

    ``p`` and ``v`` are lists of six float32 arrays (W1, b1, W2, b2, W3, b3);
    ``X`` (n, 784) float32 in [0, 1]; ``y`` (n,) int64. Returns the loss.
    """
    W1, b1, W2, b2, W3, b3 = p
    n = len(X)
    a1 = np.maximum(X @ W1 + b1, 0)                        # a1 = relu(X W1 + b1)
    a2 = np.maximum(a1 @ W2 + b2, 0)                       # a2 = relu(a1 W2 + b2)
    z3 = a2 @ W3 + b3
    z3 -= z3.max(axis=1, keepdims=True)
    e = np.exp(z3)
    P = e / e.sum(axis=1, keepdims=True)                   # softmax
    loss = -np.log(P[np.arange(n), y] + 1e-12).mean()
    dz3 = P
    dz3[np.arange(n), y] -= 1
    dz3 /= n                                               # dL/dz3 = (P - Y) / n
    da2 = dz3 @ W3.T
    dz2 = da2 * (a2 > 0)
    da1 = dz2 @ W2.T
    dz1 = da1 * (a1 > 0)
    grads = (X.T @ dz1, dz1.sum(0), a1.T @ dz2, dz2.sum(0), a2.T @ dz3, dz3.sum(0))
    for w, vel, g in zip(p, v, grads):
        vel *= momentum                                    # v <- momentum v + g
        vel += g
        w -= np.float32(lr) * vel                          # w <- w - lr v
    return float(loss)


def reference_inputs(batch_size=64):
    """Fresh (p, v, X, y) for :func:`reference_step`: seeded parameters, the first training rows."""
    rng = np.random.default_rng(0)
    shapes = ((784, 128), (128,), (128, 64), (64,), (64, 10), (10,))
    p = [(rng.standard_normal(s) * np.sqrt(2.0 / s[0]) if len(s) == 2 else np.zeros(s)).astype(DTYPE)
         for s in shapes]
    X, y = batch(batch_size)
    return p, [np.zeros_like(w) for w in p], X, y
