"""pytest-benchmark: each operation timed per backend, on demand.

Run them (and nothing else) with::

    python -m pytest tests/test_benchmarks.py --benchmark-only
    python -m pytest tests/test_benchmarks.py --benchmark-only --benchmark-columns=min,median,ops
    DIGITBENCH_BENCH_THREADS=1 python -m pytest --benchmark-only     # BLAS/OpenMP/numba at 1 thread

Groups are operations (``forward-batch64``, ``train-step-batch64``, ...), so the
backends are compared side by side within each. Compilation is never timed: each
backend is warmed up (``warmup()`` where it has one, then one tiny call of each
operation) before its first benchmark.

The normal test command runs with ``--benchmark-disable`` (pyproject.toml), under which
each test here runs its function once, untimed. That is deliberate: it keeps these tests
from rotting (a backend that breaks the interface fails here too), and it is cheap
because every input is small: the naive backend is only given batches of at most 64
and 100 test images, about 3 s in all, and nothing here runs an epoch (asv and
``digitbench bench`` time epochs).
"""

import functools
import os

import numpy as np
import pytest

import digitbench
from digitbench.params import zeros_like_params

BACKENDS = list(digitbench.BACKENDS)
NAIVE_MAX_BATCH = 64


@pytest.fixture(scope="module", autouse=True)
def thread_limit():
    """``DIGITBENCH_BENCH_THREADS=N`` holds BLAS, OpenMP and numba at N threads (default: theirs)."""
    n = int(os.environ.get("DIGITBENCH_BENCH_THREADS", "0"))
    if not n:
        yield
        return
    from digitbench.threads import prepare_threads, thread_limits

    prepare_threads(n)
    with thread_limits(n) as reapply:
        for name in BACKENDS:
            ready(name)  # compiled now, so that every pool it loads is limited below
        reapply()
        yield


@functools.lru_cache(maxsize=None)
def ready(name):
    """The backend ``name``, compiled for float32: nothing left to compile when timed."""
    backend = digitbench.get_backend(name)
    if hasattr(backend, "warmup"):
        backend.warmup()
    params = digitbench.init_params(0, np.float32)
    X = np.zeros((2, 784), np.float32)
    backend.forward(params, X)
    backend.loss_and_grads(params, X, np.zeros(2, np.int64))
    backend.train_batches(params, zeros_like_params(params), np.zeros((2, 784), np.uint8), np.zeros(2, np.int64),
                          np.arange(2, dtype=np.int64), 2, np.full(1, 0.01), 0.9)
    return backend


@pytest.fixture(scope="module")
def train_set(mnist_data):
    return mnist_data.train_images, np.ascontiguousarray(mnist_data.train_labels, dtype=np.int64)


@pytest.fixture(scope="module")
def test_set(mnist_data):
    return np.ascontiguousarray(mnist_data.test_images, dtype=np.float32) / 255


def needs_small(name, batch_size):
    if name == "naive" and batch_size > NAIVE_MAX_BATCH:
        pytest.skip("the naive backend is too slow for this size")


@pytest.mark.parametrize("batch_size", [1, 64])
@pytest.mark.parametrize("name", BACKENDS)
def test_forward(benchmark, name, batch_size, test_set):
    benchmark.group = f"forward-batch{batch_size}"
    needs_small(name, batch_size)
    backend, params = ready(name), digitbench.init_params(0, np.float32)
    X = test_set[:batch_size]
    P = benchmark(backend.forward, params, X)
    assert P.shape == (batch_size, 10)


@pytest.mark.benchmark(group="loss-and-grads-batch64")
@pytest.mark.parametrize("name", BACKENDS)
def test_loss_and_grads(benchmark, name, train_set):
    backend, params = ready(name), digitbench.init_params(0, np.float32)
    images, labels = train_set
    X, y = images[:64].astype(np.float32) / 255, labels[:64]
    loss, grads = benchmark(backend.loss_and_grads, params, X, y)
    assert np.isfinite(loss) and grads.W1.shape == (784, 128)


@pytest.mark.benchmark(group="train-step-batch64")
@pytest.mark.parametrize("name", BACKENDS)
def test_train_step(benchmark, name, train_set):
    """One SGD step with momentum through ``train_batches``, as the trainer calls it."""
    backend, params = ready(name), digitbench.init_params(0, np.float32)
    velocity = zeros_like_params(params)
    images, labels = train_set
    order = np.random.default_rng(0).permutation(len(images))[:64].astype(np.int64)
    lrs = np.full(1, 0.01)
    losses = benchmark(backend.train_batches, params, velocity, images, labels, order, 64, lrs, 0.9)
    assert losses.shape == (1,) and np.isfinite(losses).all()


@pytest.mark.benchmark(group="predict-test-set")
@pytest.mark.parametrize("name", [n for n in BACKENDS if n != "naive"])
def test_predict_test_set(benchmark, name, test_set):
    backend, params = ready(name), digitbench.init_params(0, np.float32)
    labels = benchmark(backend.predict, params, test_set)
    assert labels.shape == (10_000,)


@pytest.mark.benchmark(group="predict-100")
@pytest.mark.parametrize("name", BACKENDS)
def test_predict_100(benchmark, name, test_set):
    backend, params = ready(name), digitbench.init_params(0, np.float32)
    labels = benchmark(backend.predict, params, test_set[:100])
    assert labels.shape == (100,)
