"""Details of the numba backend that the agreement tests do not reach."""

import numpy as np
import pytest

from digitbench import get_backend, init_params
from digitbench.params import zeros_like_params


def _decay_run(name, steps=30):
    """``steps`` SGD steps at lr 0 with momentum 0.9 on black images: W1's velocity,
    1e-37 at the start, only decays (0.9^30 * 1e-37 = 4.2e-39, below float32's smallest
    normal number 1.18e-38)."""
    params = init_params(0, np.float32)
    velocity = zeros_like_params(params)
    velocity.W1[:] = np.float32(1e-37)
    images = np.zeros((8, 784), np.uint8)
    labels = np.arange(8, dtype=np.int64)
    order = np.tile(np.arange(8, dtype=np.int64), steps)
    get_backend(name).train_batches(params, velocity, images, labels, order, 8, np.zeros(steps), 0.9)
    return velocity.W1


def test_numba_flushes_subnormals_to_zero_inside_its_kernels_only():
    tiny = np.finfo(np.float32).tiny
    reference = _decay_run("numpy")  # NumPy keeps IEEE gradual underflow
    assert np.all((reference > 0) & (reference < tiny))
    flushed = _decay_run("numba")
    assert not flushed.any(), "numba: subnormal velocities should have been flushed to 0"
    # The caller's floating-point state is restored: subnormals exist again outside.
    assert np.float32(1e-38) * np.float32(0.5) > 0


def test_trainer_reports_kernel_start_up_apart_from_training(mnist_data):
    from digitbench.datasets import MnistData
    from digitbench.train import train

    small = MnistData(mnist_data.train_images[:640], mnist_data.train_labels[:640],
                      mnist_data.test_images[:100], mnist_data.test_labels[:100])
    result = train(get_backend("numba"), small, epochs=1)
    # warmup() ran (compiling, or loading numba's cache) before the training clock started
    assert result.warmup_seconds > 0 and result.summary()["warmup_seconds"] == round(result.warmup_seconds, 4)
    assert train(get_backend("numpy"), small, epochs=1).warmup_seconds == 0


def test_numba_training_is_bit_identical_on_one_or_two_threads(mnist_data):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: one thread against one thread could not fail")

    images, labels = mnist_data.train_images[:1000], np.asarray(mnist_data.train_labels[:1000], dtype=np.int64)
    order = np.random.default_rng(5).permutation(1000).astype(np.int64)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            params = init_params(0, np.float32)
            velocity = zeros_like_params(params)
            losses = get_backend("numba").train_batches(params, velocity, images, labels, order, 64,
                                                        np.full(16, 0.05), 0.9)
            results.append((params, velocity, losses))
    finally:
        numba.set_num_threads(before)
    (p1, v1, l1), (p2, v2, l2) = results
    assert np.array_equal(l1, l2)
    for a, b in zip((*p1, *v1), (*p2, *v2)):
        assert np.array_equal(a, b)
