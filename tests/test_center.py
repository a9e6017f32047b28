"""Centred inputs (the recipe's ``center``): every backend, the trainer and the peers
train the raw-pixel network exactly as a network on ``x - mean`` would be trained.

The reference is the obvious way: the centred pixels fed to ``loss_and_grads``, with
its own first bias c (zero at the start), and the plain momentum update. A backend
keeps the raw network's parameters instead (W1 the same, b1 = c - mean @ W1), so the
two must agree to float64 rounding after several steps.
"""

import numpy as np
import pytest

from digitbench import get_backend, init_params
from digitbench.datasets import synthetic_data
from digitbench.errors import UsageError
from digitbench.kernels.base import center_gradients, center_start
from digitbench.params import Params, copy_params, zeros_like_params
from digitbench.pixels import mean_image
from digitbench.recipe import Recipe
from digitbench.train import train

DATA = synthetic_data(5, 96, 16)


def centred_reference(images, labels, order, batch, lrs, momentum, seed=2):
    """Momentum SGD on the centred pixels x - mean; returns (W1, c, W2, b2, W3, b3)."""
    mean = mean_image(images, np.float64)
    params = init_params(seed, np.float64)
    velocity = zeros_like_params(params)
    numpy = get_backend("numpy")
    for k, lr in enumerate(lrs):
        rows = order[k * batch:(k + 1) * batch]
        _, grads = numpy.loss_and_grads(params, images[rows] / 255.0 - mean, labels[rows])
        for w, v, g in zip(params, velocity, grads):
            v *= momentum
            v += g
            w -= lr * v
    return params, mean


@pytest.mark.parametrize("momentum", [0.9, 0.0])  # numba: the velocity update, and W1 as its own velocity
@pytest.mark.parametrize("name, steps, batch", [("numpy", 8, 12), ("numba", 8, 12), ("naive", 2, 4)])
def test_a_backend_trains_as_on_centred_pixels(name, steps, batch, momentum):
    images, labels = DATA.train_images, np.asarray(DATA.train_labels, np.int64)
    order = np.random.default_rng(0).permutation(len(images))[:steps * batch].astype(np.int64)
    lrs = np.linspace(0.2, 0.05, steps)
    want, mean = centred_reference(images, labels, order, batch, lrs, momentum)
    params = center_start(init_params(2, np.float64), mean)
    start = copy_params(params)
    velocity = zeros_like_params(params)
    get_backend(name).train_batches(params, velocity, images, labels, order, batch, lrs, momentum, mean=mean)
    assert np.abs(params.b1 - start.b1).max() > 1e-3  # it moved: the comparison means something
    for got, ref, what in zip(params, want._replace(b1=want.b1 - mean @ want.W1), Params._fields):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12, err_msg=f"{name}: {what}")


def test_center_gradients_is_the_chain_rule_of_the_centred_bias():
    """One step of size 1 by hand: W1' = W1 - dW1', c' = c - dc, b1' = c' - mean @ W1'."""
    rng = np.random.default_rng(1)
    mean, W1, c = rng.random(784), rng.standard_normal((784, 128)), rng.standard_normal(128)
    X, dz1 = rng.random((5, 784)), rng.standard_normal((5, 128))
    grads = Params(X.T @ dz1, dz1.sum(0), *(np.zeros(1) for _ in range(4)))  # raw-network gradients
    center_gradients(grads, mean)
    W1_next, c_next = W1 - (X - mean).T @ dz1, c - dz1.sum(0)
    np.testing.assert_allclose(W1 - grads.W1, W1_next, atol=1e-12)
    np.testing.assert_allclose((c - mean @ W1) - grads.b1, c_next - mean @ W1_next, atol=1e-9)


def test_the_trainer_centres_from_init_params_with_a_zero_centred_bias():
    run = train("numpy", DATA, epochs=1, batch_size=16, lr=0.05, center=True, seed=2, dtype="float64")
    images, labels = DATA.train_images, np.asarray(DATA.train_labels, np.int64)
    order = np.random.default_rng(2).permutation(len(images)).astype(np.int64)  # as the trainer draws it
    lrs = Recipe(epochs=1, batch_size=16, lr=0.05, center=True).learning_rates(6, 1, 0, 6)
    want, mean = centred_reference(images, labels, order, 16, lrs, 0.9)
    np.testing.assert_allclose(run.params.W1, want.W1, atol=1e-12)
    np.testing.assert_allclose(run.params.b1, want.b1 - mean @ want.W1, atol=1e-12)
    assert run.summary()["center"] is True


def test_fast_centres_and_center_must_be_true_or_false():
    assert Recipe.named("fast").center and not Recipe.named("seed").center
    with pytest.raises(UsageError, match="--center must be true or false"):
        Recipe(center="yes")


def test_numba_refuses_a_mean_of_the_wrong_shape():
    params = init_params(0)
    with pytest.raises(ValueError, match=r"mean must have shape \(784,\)"):
        get_backend("numba").train_batches(params, zeros_like_params(params), DATA.train_images,
                                           np.asarray(DATA.train_labels, np.int64), np.arange(8), 8,
                                           np.full(1, 0.1), 0.9, mean=np.zeros(10))
