"""The declared networks run layer by layer on every backend: their parameters, agreement,
finite differences of the whole loss, and clear errors for wrong shapes, in float64.

Tolerances are tests/test_agreement.py's (``TOL64``) and digitbench.gradcheck's (its
module docstring derives them); the naive backend runs on one image.
"""

import math

import numpy as np
import pytest

from digitbench import networks
from digitbench.gradcheck import FLOOR, TOLERANCE, pick_entries
from digitbench.kernels.numpy_backend import NumpyBackend
from digitbench.backends import get_backend
from digitbench.kernels import layer_pass
from digitbench.kernels.layer_pass import forward, forward_cache, loss_and_grads
from digitbench.networks import CNN, MLP, get_network, init_params, n_params
from digitbench.params import init_params as mlp_init_params
from test_agreement import TOL64, rel_err
from test_cnn_layers import numeric_gradient


def random_case(network, n, seed=0):
    """He-initialised weights, small random biases (zero ones would hide bias bugs), and
    n images in [0, 1] with ~70% black pixels, as flat rows (n, 784)."""
    rng = np.random.default_rng(seed)
    params = init_params(network, seed, np.float64)
    params = network.params_type(*(a if a.ndim > 1 else rng.normal(0, 0.1, a.shape) for a in params))
    X = rng.uniform(0, 1, size=(n, 784)) * (rng.random((n, 784)) < 0.3)
    return params, X, rng.integers(0, 10, size=n)


def test_the_cnn_has_215370_parameters_in_pytorch_and_row_major_layouts():
    assert n_params(CNN) == 215_370 and n_params(MLP) == 109_386
    assert CNN.param_shapes == {"W1": (16, 1, 5, 5), "b1": (16,), "W2": (32, 16, 5, 5), "b2": (32,),
                                "W3": (1568, 128), "b3": (128,), "W4": (128, 10), "b4": (10,)}
    assert [layer.name for layer in CNN.layers] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                                                    "dense3", "relu3", "dense4"]
    assert [layer.out_shape for layer in CNN.layers] == [(16, 28, 28), (16, 28, 28), (16, 14, 14), (32, 14, 14),
                                                         (32, 14, 14), (32, 7, 7), (1568,), (128,), (128,), (10,)]
    params = init_params(CNN, seed=1)
    assert isinstance(params, networks.CnnParams) and all(p.dtype == np.float32 for p in params)
    assert [p.shape for p in params] == list(CNN.param_shapes.values())


def test_he_initialisation_uses_each_layers_fan_in():
    params = init_params(CNN, seed=0, dtype=np.float64)
    for name, fan_in in [("W1", 25), ("W2", 400), ("W3", 1568), ("W4", 128)]:
        std = getattr(params, name).std()
        assert abs(std / math.sqrt(2 / fan_in) - 1) < 0.2, name  # W1 has only 400 draws
    assert all(not getattr(params, b).any() for b in ("b1", "b2", "b3", "b4"))
    np.testing.assert_array_equal(init_params(CNN, 3).W2, init_params(CNN, 3).W2)


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_the_declared_mlp_is_the_mlp(name):
    """Same initial parameters as digitbench.init_params, and run layer by layer from its
    declaration on a backend's ops, the same loss and gradients as that backend's own MLP
    (numba's: its fused kernels, the optimisation the layer ops check)."""
    for a, b in zip(init_params(MLP, 7, np.float64), mlp_init_params(7, np.float64)):
        np.testing.assert_array_equal(a, b)
    params, X, y = random_case(MLP, 16)
    loss, grads = loss_and_grads(MLP, params, X, y, name)
    ref_loss, ref_grads = (NumpyBackend() if name == "numpy" else get_backend(name)).loss_and_grads(params, X, y)
    assert math.isclose(loss, ref_loss, rel_tol=TOL64)
    for field, g, r in zip(MLP.params_type._fields, grads, ref_grads):
        assert rel_err(g, r) <= TOL64, field


@pytest.mark.parametrize("network", [CNN, MLP], ids=lambda net: net.name)
@pytest.mark.parametrize("name, n", [("numba", 5), ("naive", 1)])
def test_the_backends_agree_on_the_whole_network(network, name, n):
    params, X, y = random_case(network, n, seed=2)
    xs, ref_xs = forward_cache(network, params, X, name), forward_cache(network, params, X, "numpy")
    for layer, a, b in zip(network.layers, xs[1:], ref_xs[1:]):
        assert a.shape == b.shape == (n, *layer.out_shape), f"{name}: {layer.name}"
        assert rel_err(a, b) <= TOL64, f"{name}: {layer.name}"
    loss, grads = loss_and_grads(network, params, X, y, name)
    ref_loss, ref_grads = loss_and_grads(network, params, X, y, "numpy")
    assert isinstance(loss, float) and math.isclose(loss, ref_loss, rel_tol=TOL64), name
    for field, g, r in zip(network.params_type._fields, grads, ref_grads):
        assert g.shape == r.shape and rel_err(g, r) <= TOL64, f"{name}: d{field}"
    assert rel_err(forward(network, params, X, name), forward(network, params, X, "numpy")) <= TOL64


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_the_whole_cnn_loss_passes_finite_differences(name):
    """Central differences of the mean cross-entropy at 4 entries of every parameter
    (among those with a non-zero gradient first), 3 images."""
    params, X, y = random_case(CNN, 3, seed=4)
    rng = np.random.default_rng(4)
    loss, grads = loss_and_grads(CNN, params, X, y, name)

    def loss_at():
        return layer_pass.loss(CNN, params, X, y, name)

    assert loss == loss_at()
    for field, w, g in zip(CNN.params_type._fields, params, grads):
        flat_w, flat_g = w.reshape(-1), g.reshape(-1)
        picks = pick_entries(rng, flat_g, 4)
        assert np.count_nonzero(flat_g[picks]), f"{name}: d{field} has no live entry to check"
        for k in picks:
            numeric, analytic = numeric_gradient(loss_at, flat_w, k), float(flat_g[k])
            rel = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), FLOOR)
            assert rel <= TOLERANCE, f"{name}: d{field}[{k}] analytic {analytic} numeric {numeric}"


def test_flat_rows_and_images_give_the_same_result():
    params, X, y = random_case(CNN, 2, seed=5)
    a = loss_and_grads(CNN, params, X, y)
    b = loss_and_grads(CNN, params, X.reshape(2, 1, 28, 28), y)
    assert a[0] == b[0] and all(np.array_equal(g, h) for g, h in zip(a[1], b[1]))


def test_a_wrong_input_names_the_layer_and_the_shapes():
    params, X, y = random_case(CNN, 2, seed=6)
    with pytest.raises(ValueError, match=r"cnn layer conv1 \(conv2d\): input of shape \(2, 2, 28, 28\), "
                                         r"expected \(n, 1, 28, 28\)"):
        forward(CNN, params, np.zeros((2, 2, 28, 28)))
    with pytest.raises(ValueError, match=r"cnn layer conv1 \(conv2d\): input of shape \(2, 1, 27, 28\)"):
        forward(CNN, params, np.zeros((2, 1, 27, 28)))
    with pytest.raises(ValueError, match=r"cnn layer dense3: W3 of shape \(1567, 128\), expected \(1568, 128\)"):
        forward(CNN, params._replace(W3=np.zeros((1567, 128))), X)
    with pytest.raises(ValueError, match=r"mlp layer dense1 \(linear\): input of shape \(2, 783\)"):
        forward(MLP, init_params(MLP), np.zeros((2, 783)))


def test_an_unknown_network_names_the_valid_ones():
    assert get_network("cnn") is CNN
    with pytest.raises(ValueError, match="mlp, cnn"):
        get_network("resnet")
