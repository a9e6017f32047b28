"""Data builders and helpers shared by the asv benchmarks.

APPEND, NEVER CHANGE. asv compares each benchmark with its own history; changing what a
builder returns (its seed, its size, its source) silently moves every figure that uses
it, and the history stops meaning anything. Add a new builder (``batch_v2``) instead.

The benchmarks run against old commits too, so this module uses only the public
contract of ``digitbench`` (``load_mnist``, ``init_params``, ``get_backend``,
``BACKENDS``) and guards anything newer.

Profiles
--------
``DIGITBENCH_BENCH_PROFILE=fast`` (for CI, with ``asv run --quick``) shrinks the
parameter grids, the "epoch" (6,000 samples instead of 60,000) and the seed recipe
(3 epochs instead of 30). Figures from the two profiles are not comparable; asv keeps
them apart only if you run them on different machine names, so use ``fast`` for smoke
tests, ``full`` (the default) for history.

Threads
-------
Each library's default, unless ``DIGITBENCH_BENCH_THREADS=N`` is set: then BLAS,
OpenMP and numba are held at N threads (threadpoolctl, ``numba.set_num_threads``).

Data
----
The real MNIST files are looked for in ``$DIGITBENCH_DATA``, then in ``shared/mnist``
beside the repository (``$ASV_CONF_DIR/../shared/mnist``), then in digitbench's per-user
cache; nothing is downloaded. Without them, timing benchmarks use a seeded synthetic set
of the same shape and sparsity (speed does not depend on the pixel values), and the
accuracy benchmarks are skipped.
"""

import functools
import math
import os
from pathlib import Path

import numpy as np

PROFILE = os.environ.get("DIGITBENCH_BENCH_PROFILE", "full")
if PROFILE not in ("full", "fast"):
    raise ValueError(f"DIGITBENCH_BENCH_PROFILE must be 'full' or 'fast', not {PROFILE!r}")
FAST = PROFILE == "fast"

#: Every backend the project means to have; one not (yet) registered is skipped.
ALL_BACKENDS = ("naive", "numpy", "numba")
#: The naive backend runs pure Python loops (tens of ms per sample): never more than this.
NAIVE_MAX_BATCH = 64

#: Samples in one timed "epoch": the whole training set, or a tenth in the fast profile.
EPOCH_SAMPLES = 6_000 if FAST else 60_000
DTYPE = np.float32


# --------------------------------------------------------------------------- backends


def backend_or_skip(name, batch_size=None):
    """The registered backend ``name``, warmed up; NotImplementedError skips the benchmark.

    Skipped: a backend this commit does not have, and the naive backend on batches
    larger than :data:`NAIVE_MAX_BATCH` (pass ``batch_size=None`` for whole-data runs,
    which are never given to it).
    """
    import digitbench

    if name not in digitbench.BACKENDS:
        raise NotImplementedError(f"backend {name!r} is not in this commit")
    if name == "naive" and (batch_size is None or batch_size > NAIVE_MAX_BATCH):
        raise NotImplementedError("the naive backend is too slow for this benchmark")
    backend = digitbench.get_backend(name)
    limit_threads()
    warm_up(backend)
    limit_threads()  # again: compiling may have loaded an OpenMP runtime
    return backend


def limit_threads():
    """``DIGITBENCH_BENCH_THREADS=N``: hold BLAS, OpenMP and numba at N threads from now on.

    Without it, each library keeps its own default (usually one thread per core). A pool
    loaded later is not covered by threadpoolctl, so this sets ``OMP_NUM_THREADS`` for
    libraries still to load, and is called again after the warm-up.
    """
    n = int(os.environ.get("DIGITBENCH_BENCH_THREADS", "0"))
    if not n:
        return
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # commits older than the dependency
        return
    threadpool_limits(limits=n)  # applied now, kept for the (one-benchmark) process
    import sys

    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def warm_up(backend, dtype=DTYPE):
    """Compile whatever a backend compiles, so that no timed call pays for it.

    Calls ``backend.warmup()`` where it exists (numba compiles there), then each
    operation the benchmarks time once on two samples, in ``dtype``.
    """
    if hasattr(backend, "warmup"):
        backend.warmup()
    X, y = batch(2, dtype)
    p = params(dtype)
    backend.forward(p, X)
    backend.loss_and_grads(p, X, y)
    images, labels = train_arrays()
    run_steps(backend, p, zeros_like(p), images, labels, np.arange(2, dtype=np.int64), 2, 1)


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
            try:
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
    """Zero arrays shaped like ``p`` (the momentum buffer): digitbench's own helper,
    present since the first commit."""
    from digitbench.params import zeros_like_params

    return zeros_like_params(p)


def epoch_order(n=EPOCH_SAMPLES, seed=0):
    """The row order of one timed epoch: a seeded permutation of the first ``n`` rows."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


# --------------------------------------------------------------------------- training


def run_steps(backend, p, velocity, images, labels, order, batch_size, steps, lr=0.01, momentum=0.9):
    """``steps`` SGD steps of ``batch_size`` rows of ``order``, as the trainer runs them.

    Uses ``backend.train_batches`` (the trainer's unit, where a backend may stay in
    compiled code for many steps); the trainer hands it at most a quarter epoch at a
    time, and so does this.
    """
    lrs = np.full(steps, lr)
    chunk = max(1, min(math.ceil(steps / 4), getattr(backend, "max_steps_per_call", steps)))
    losses = []
    for first in range(0, steps, chunk):
        k = min(chunk, steps - first)
        losses.append(backend.train_batches(p, velocity, images, labels,
                                            order[first * batch_size:(first + k) * batch_size],
                                            batch_size, lrs[first:first + k], momentum))
    return np.concatenate(losses)
