"""Builders of the CNN's asv benchmarks (bench_cnn.py), beside common.py's and as they are:
APPEND, NEVER CHANGE (see common.py). Commits without the CNN are skipped.
"""

import functools

import numpy as np

from . import THREADS
from .common import DTYPE, TRAINABLE, batch, call_warmup, hold_threads, run_steps, train_arrays, zeros_like


def cnn_network():
    """The declared CNN (``digitbench.networks.CNN``); NotImplementedError on older commits."""
    try:
        from digitbench.networks import CNN
    except ImportError:
        raise NotImplementedError("this commit has no CNN") from None
    return CNN


def cnn_backend_or_skip(name, threads=THREADS):
    """The backend ``name`` running the CNN (``get_backend(name, network="cnn")``), compiled,
    with threads held; NotImplementedError skips (no CNN, or the naive backend)."""
    import digitbench

    cnn_network()
    if name not in digitbench.BACKENDS:
        raise NotImplementedError(f"backend {name!r} is not in this commit")
    if name == "naive":
        raise NotImplementedError("the naive backend's convolutions are too slow for these benchmarks")
    backend = digitbench.get_backend(name, network="cnn")
    hold_threads(threads)
    call_warmup(backend)
    p = cnn_params()
    images, labels = train_arrays()
    run_steps(backend, p, zeros_like(p), images, labels, np.arange(2, dtype=np.int64), 2, 1)
    hold_threads(threads)  # again: compiling may have loaded another pool
    return backend


def cnn_params(dtype=DTYPE, seed=0):
    """Fresh He-initialised CNN parameters (``digitbench.networks.init_params(CNN, seed)``)."""
    from digitbench.networks import init_params

    return init_params(cnn_network(), seed, dtype)


@functools.lru_cache(maxsize=None)
def cnn_batch(n, dtype=DTYPE):
    """The first ``n`` training samples as images: (X (n, 1, 28, 28) in [0, 1], y int64 (n,))."""
    X, y = batch(n, dtype)
    return X.reshape(n, 1, 28, 28), y


def each_backend(run, names=TRAINABLE):
    """``{name: run(name)}`` for ``setup_cache``, which cannot skip: a NotImplementedError
    becomes ``{"skip": its reason}``, for :func:`skip_if_cached` to raise in ``setup``.
    (bench_accuracy.SeedRecipe writes this out: asv versions a benchmark by its source.)"""
    results = {}
    for name in names:
        try:
            results[name] = run(name)
        except NotImplementedError as e:
            results[name] = {"skip": str(e)}
    return results


def skip_if_cached(cache, backend):
    """Raise the NotImplementedError :func:`each_backend` kept for ``backend``, if any."""
    if "skip" in cache[backend]:
        raise NotImplementedError(cache[backend]["skip"])
