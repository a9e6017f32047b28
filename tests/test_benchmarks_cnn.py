"""pytest-benchmark of the CNN: each layer's forward and backward, and a training step, per backend.

Run them (and nothing else) with::

    python -m pytest tests/test_benchmarks_cnn.py --benchmark-only
    DIGITBENCH_BENCH_THREADS=1 python -m pytest tests/test_benchmarks_cnn.py --benchmark-only

Groups are operations (``cnn-conv2-forward-batch64``, ``cnn-train-step-batch64``, ...),
so that the backends are compared side by side within each. Each layer is timed on the
input the network's forward pass gives it from the first 64 training images, its
backward on a seeded gradient of its output's shape. The naive backend's convolutions
are pure Python loops: not timed here. Compilation is never timed: each backend's ops
run once before their first benchmark. Under the normal ``--benchmark-disable`` each
test runs its function once, untimed, as a check that the ops keep their interface.
"""

import functools

import numpy as np
import pytest

from digitbench import get_backend
from digitbench.kernels.layer_ops import THREADED, get_ops
from digitbench.kernels.layer_pass import forward_cache
from digitbench.networks import CNN, init_params
from digitbench.params import zeros_like_params
from test_benchmarks import thread_limit  # noqa: F401  (autouse: DIGITBENCH_BENCH_THREADS=N holds every pool at N)

BACKENDS = ["numpy", "numba"]
LAYERS = [layer for layer in CNN.layers if layer.kind != "flatten"]
BATCH = 64


@functools.lru_cache(maxsize=None)
def ops_of(name):
    """The layer ops of ``name`` (numba's on its current thread count), compiled."""
    backend = get_backend(name, network="cnn")
    backend.warmup()
    return backend.ops(threads_now()) if name in THREADED else get_ops(name)


def threads_now():
    import numba

    return numba.get_num_threads()


@pytest.fixture(scope="module")
def layer_inputs(mnist_data):
    """Each layer's input for the first 64 training images, float32: a list, layer by layer."""
    params = init_params(CNN, 0, np.float32)
    X = np.ascontiguousarray(mnist_data.train_images[:BATCH], dtype=np.float32) / 255
    return params, forward_cache(CNN, params, X, "numpy")


def layer_call(name, layer, layer_inputs, direction):
    """(function, arguments) of ``layer``'s op in ``direction`` on its own input."""
    params, xs = layer_inputs
    index = CNN.layers.index(layer)
    weights = dict(zip(CNN.param_shapes, params))
    W = [weights[p] for p in layer.params]
    x, options = xs[index], dict(layer.options)
    op = getattr(ops_of(name), f"{layer.kind}_{direction}")
    if direction == "forward":
        return functools.partial(op, x, *W, **options)
    dy = np.random.default_rng(0).standard_normal((BATCH, *layer.out_shape)).astype(np.float32)
    return functools.partial(op, dy, x, *W[:1], **options)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
@pytest.mark.parametrize("name", BACKENDS)
def test_cnn_layer(benchmark, name, layer, direction, layer_inputs):
    benchmark.group = f"cnn-{layer.name}-{direction}-batch{BATCH}"
    call = layer_call(name, layer, layer_inputs, direction)
    call()  # compiled for these shapes, off the clock
    out = benchmark(call)
    first = out[0] if isinstance(out, tuple) else out
    shape = layer.out_shape if direction == "forward" else layer.in_shape
    assert first.shape == (BATCH, *shape) and np.isfinite(first).all()


@pytest.mark.benchmark(group=f"cnn-train-step-batch{BATCH}")
@pytest.mark.parametrize("name", BACKENDS)
def test_cnn_train_step(benchmark, name, mnist_data):
    """One SGD step of the CNN with momentum through ``train_batches``, as the trainer calls it."""
    backend = get_backend(name, network="cnn")
    ops_of(name)
    params = init_params(CNN, 0, np.float32)
    velocity = zeros_like_params(params)
    images, labels = mnist_data.train_images, np.ascontiguousarray(mnist_data.train_labels, dtype=np.int64)
    order = np.random.default_rng(0).permutation(len(images))[:BATCH].astype(np.int64)
    losses = benchmark(backend.train_batches, params, velocity, images, labels, order, BATCH, np.full(1, 0.01), 0.9)
    assert losses.shape == (1,) and np.isfinite(losses).all()
