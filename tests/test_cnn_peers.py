"""The CNN's peers train the same CNN as digitbench, from the same weights, on the same batches.

Each peer (PyTorch eager, JAX step and scan) is prepared on a few random images beside
digitbench's NumPy backend running the CNN; both start from ``init_params(CNN, seed)``
(PyTorch and XLA take the convolution weights as they are and the dense weights
transposed) and take the same two batches at the same rates, with momentum. PyTorch runs
in float64, so only the summation order differs from NumPy; JAX runs in float32 (float64
needs a process-wide switch). torch.compile (inductor) compiles for half a minute or
more: it has this file's one test of its own, on the same few images in float64.
"""

import importlib.util

import numpy as np
import pytest

from digitbench import bench, get_backend
from digitbench.datasets import synthetic_data
from digitbench.networks import CNN

MODULES = {"pytorch": "torch", "torch.compile": "torch", "jax-step": "jax", "jax-scan": "jax"}
#: (rtol, atol) after two steps. float64: only the order of the sums differs (measured
#: differences near 1e-15). float32: the same, at float32's 6e-8 per operation over a
#: 400-term convolution sum and a 1568-term dense one.
TOLERANCE = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 1e-5)}


def make(name, dtype):
    from digitbench.peers import JaxContender, TorchContender

    if name in ("pytorch", "torch.compile"):
        return TorchContender(1, compiled=name == "torch.compile", network=CNN, dtype=dtype)
    return JaxContender(1, scan=name == "jax-scan", network=CNN)


@pytest.mark.parametrize("name", MODULES)
def test_a_cnn_peer_trains_like_digitbench(name):
    if importlib.util.find_spec(MODULES[name]) is None:
        pytest.skip(f"{MODULES[name]} is not installed; needs the compare extra: pip install -e '.[compare]'")
    dtype = np.float64 if MODULES[name] == "torch" else np.float32
    data, batch = synthetic_data(0, 16, 8), 4
    peer = make(name, dtype)
    reference = bench.BackendContender(get_backend("numpy", network="cnn"), dtype=dtype)
    peer.prepare(data, batch, seed=3)
    reference.prepare(data, batch, seed=3)
    for ours, theirs, what in zip(reference.weights(), peer.weights(), CNN.params_type._fields):
        np.testing.assert_array_equal(theirs, ours, err_msg=f"{name}: initial {what} is not init_params(CNN, 3)'s")
    start = [w.copy() for w in reference.weights()]
    order = np.random.default_rng(1).permutation(len(data.train_images))[:2 * batch].astype(np.int64)
    lrs = np.array([0.1, 0.05])
    peer.train(order, lrs)
    reference.train(order, lrs)
    rtol, atol = TOLERANCE[dtype]
    for ours, theirs, first, what in zip(reference.weights(), peer.weights(), start, CNN.params_type._fields):
        assert np.abs(ours - first).max() > 1e-4, f"{what} did not move: the test would prove nothing"
        np.testing.assert_allclose(theirs, ours, rtol=rtol, atol=atol, err_msg=f"{name}: {what} after 2 steps")
    np.testing.assert_array_equal(peer.predict(peer.test), reference.predict(reference.test))
