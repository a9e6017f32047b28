"""The numba layer ops give the same bits on 1, 2 and 3 threads, for the whole CNN.

Every output element is computed by one thread in a fixed order and nothing is summed
across threads (kernels/conv_numba.py), so the loss, every layer's output and every
gradient must be bit-identical whatever the thread count. Numba cannot raise its
thread count above the one it started with, so counts above the machine's run in a
subprocess started with NUMBA_NUM_THREADS set.
"""

import hashlib

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from digitbench.kernels.layer_ops import get_ops  # noqa: E402
from digitbench.kernels.layer_pass import forward_cache, loss_and_grads  # noqa: E402
from digitbench.networks import CNN, init_params  # noqa: E402
from numba_cases import digests_on_threads  # noqa: E402


def digest(threads, dtype="float32"):
    """A hash of the loss, every layer's output and every gradient, on ``threads`` threads
    (5 images: the splits are uneven for 2 and 3)."""
    rng, dtype = np.random.default_rng(0), np.dtype(dtype).type
    params = init_params(CNN, 0, dtype)
    params = CNN.params_type(*(a if a.ndim > 1 else rng.normal(0, 0.1, a.shape).astype(dtype) for a in params))
    X = (rng.integers(0, 256, size=(5, 784)) * (rng.random((5, 784)) < 0.3) / 255).astype(dtype)
    y = rng.integers(0, 10, size=5)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        ops = get_ops("numba", threads)
        loss, grads = loss_and_grads(CNN, params, X, y, ops)
        arrays = [np.float64(loss), *forward_cache(CNN, params, X, ops), *grads]
    finally:
        numba.set_num_threads(previous)
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_same_bits_on_one_two_and_three_threads(dtype):
    found = digests_on_threads("test_cnn_threads", "digest", dtype)
    assert len(found) == 3 and len(set(found.values())) == 1, found
