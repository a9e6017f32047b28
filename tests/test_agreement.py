"""The three backends agree: forward, loss, every gradient, SGD steps, predictions.

The NumPy backend is the reference, so the cases that compare with it run on the other
backends only (NumPy compared with itself could not fail); NumPy itself is checked
against PyTorch's autograd (tests/test_against_pytorch.py), against the base class's
plain loop, against a step worked by hand, and in float32 against its float64 results.
Tolerances, and why:

- float64: relative error <= 1e-9. The backends add the same terms in different orders
  (sparse skips, 4-way unrolling, fused multiply-adds, BLAS blocking); each order is
  exact to a few units of float64's eps (1.1e-16) per term, so sums of up to 784 terms
  differ by ~1e-13 relative at worst. 1e-9 leaves four orders of magnitude of margin
  while any real bug (a missed term, a wrong index) shows up at 1e-3 or more.
- float32: each backend is compared with the *exact* answer (the NumPy backend run in
  float64 on the same float32 parameters), to 1e-4 relative. float32's eps is 6e-8; a
  dot product of K = 784 terms has a worst-case relative error of about K * eps = 4.7e-5
  (typically sqrt(K) * eps = 1.7e-6), and float32 inputs make the rest exact.

"Relative" is norm-wise: max |a - b| / max |b| over the tensor, so that entries that are
(nearly) zero do not make it meaningless.
"""

import math

import numpy as np
import pytest

from digitbench.backends import BACKENDS, get_backend
from digitbench.model_io import load_model, save_model
from digitbench.params import Params, copy_params, init_params, zeros_like_params

NAMES = list(BACKENDS)
#: The backends compared with the reference (NumPy): every one but NumPy.
OTHERS = [name for name in BACKENDS if name != "numpy"]
TOL64 = 1e-9
TOL32 = 1e-4


def rel_err(a, b):
    """Norm-wise relative error max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def mnist_like_batch(n, seed):
    """n uint8 images with ~80% black pixels (like MNIST) and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, size=(n, 784)).astype(np.uint8)
    images[rng.random((n, 784)) < 0.8] = 0
    return images, rng.integers(0, 10, size=n).astype(np.int64)


def random_params(dtype, seed=3):
    """He-initialised weights and small random biases (zero biases would hide bias bugs)."""
    rng = np.random.default_rng(seed)
    params = init_params(seed, np.float64)
    params = Params(*(a if a.ndim == 2 else rng.normal(0, 0.1, a.shape) for a in params))
    return copy_params(params, dtype)


@pytest.fixture(scope="module")
def batch():
    images, labels = mnist_like_batch(8, seed=5)  # 8 samples: naive takes a fraction of a second
    return images, labels


@pytest.mark.parametrize("name", OTHERS)
def test_forward_and_gradients_agree_float64(name, batch):
    images, y = batch
    params = random_params(np.float64)
    X = images / 255.0
    ref, backend = get_backend("numpy"), get_backend(name)
    p = backend.forward(params, X)
    assert p.shape == (8, 10) and p.dtype == np.float64
    assert rel_err(p, ref.forward(params, X)) <= TOL64, f"{name}: forward"
    loss, grads = backend.loss_and_grads(params, X, y)
    ref_loss, ref_grads = ref.loss_and_grads(params, X, y)
    assert isinstance(loss, float)
    assert math.isclose(loss, ref_loss, rel_tol=TOL64), f"{name}: loss {loss} vs {ref_loss}"
    assert isinstance(grads, Params)
    for field, g, r in zip(Params._fields, grads, ref_grads):
        assert g.shape == r.shape and g.dtype == np.float64, f"{name}: d{field} shape/dtype"
        assert rel_err(g, r) <= TOL64, f"{name}: d{field} rel err {rel_err(g, r):.2e}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_gradients_float32_close_to_exact(name, batch):
    images, y = batch
    params32 = random_params(np.float32)
    exact = get_backend("numpy")  # run in float64 on the same (float32) values
    params64 = copy_params(params32, np.float64)
    X32 = images.astype(np.float32) / 255
    backend = get_backend(name)
    p = backend.forward(params32, X32)
    assert p.dtype == np.float32
    assert rel_err(p, exact.forward(params64, X32.astype(np.float64))) <= TOL32, f"{name}: forward"
    loss, grads = backend.loss_and_grads(params32, X32, y)
    ref_loss, ref_grads = exact.loss_and_grads(params64, X32.astype(np.float64), y)
    assert math.isclose(loss, ref_loss, rel_tol=TOL32), f"{name}: loss {loss} vs {ref_loss}"
    for field, g, r in zip(Params._fields, grads, ref_grads):
        assert g.dtype == np.float32, f"{name}: d{field} dtype {g.dtype}"
        assert rel_err(g, r) <= TOL32, f"{name}: d{field} rel err {rel_err(g, r):.2e}"


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("name", OTHERS)
def test_train_batches_agree_float64(name, momentum):
    images, labels = mnist_like_batch(40, seed=11)
    order = np.random.default_rng(2).permutation(40).astype(np.int64)[:22]  # 3 steps of 8, the last short
    lrs = np.array([0.05, 0.04, 0.03])
    results = {}
    for which in ("numpy", name):
        params = random_params(np.float64)
        velocity = zeros_like_params(params)
        losses = get_backend(which).train_batches(params, velocity, images, labels, order, 8, lrs, momentum)
        results[which] = (losses, params, velocity)
    (ref_losses, ref_params, ref_v), (losses, params, v) = results["numpy"], results[name]
    assert losses.shape == (3,) and rel_err(losses, ref_losses) <= TOL64
    for field, a, b in zip(Params._fields, params, ref_params):
        assert rel_err(a, b) <= TOL64, f"{name}: {field} after 3 steps, rel err {rel_err(a, b):.2e}"
    if momentum:
        for field, a, b in zip(Params._fields, v, ref_v):
            assert rel_err(a, b) <= TOL64, f"{name}: velocity of {field}"


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_numpy_in_place_steps_equal_the_plain_loop_of_the_base_class(momentum):
    """NumPy's preallocated, in-place train_batches against Backend.train_batches, the
    readable loop (loss_and_grads, then v <- m v + g; w <- w - lr v) that every backend
    documents; float64, three steps, the last batch short."""
    from digitbench.kernels.base import Backend
    from digitbench.kernels.numpy_backend import NumpyBackend

    class PlainNumpy(NumpyBackend):
        train_batches = Backend.train_batches

    images, labels = mnist_like_batch(40, seed=11)
    order = np.random.default_rng(2).permutation(40).astype(np.int64)[:22]
    lrs = np.array([0.05, 0.04, 0.03])
    results = []
    for backend in (NumpyBackend(), PlainNumpy()):
        params = random_params(np.float64)
        velocity = zeros_like_params(params)
        losses = backend.train_batches(params, velocity, images, labels, order, 8, lrs, momentum)
        results.append((losses, params, velocity))
    (l1, p1, v1), (l2, p2, v2) = results
    assert rel_err(l1, l2) <= TOL64
    for field, a, b in zip(Params._fields * 2, (*p1, *v1), (*p2, *v2)):
        assert rel_err(a, b) <= TOL64, f"{field}: rel err {rel_err(a, b):.2e}"


@pytest.mark.parametrize("name", NAMES)
def test_every_backend_learns(name, mnist_data):
    """Five float32 steps on the same 16 real images drive their loss down (naive included)."""
    images, labels = mnist_data[0][:16], np.asarray(mnist_data[1][:16], dtype=np.int64)
    params = init_params(0, np.float32)
    order = np.tile(np.arange(16, dtype=np.int64), 5)
    losses = get_backend(name).train_batches(params, zeros_like_params(params), images, labels, order, 16,
                                             np.full(5, 0.1), 0.5)
    assert losses[-1] < 0.5 * losses[0], f"{name}: losses {losses}"


@pytest.mark.parametrize("name", NAMES)
def test_one_sgd_step_worked_by_hand(name):
    """A single sample where every number can be followed with a pencil.

    Input: pixel 0 is 255 (x0 = 1.0), every other pixel 0; label y = 3.
    Weights all zero except W1[0,0] = 1, W2[0,0] = 2, W3[0,3] = 0.5; biases zero.

    Forward:  z1[0] = x0 * W1[0,0] = 1   (z1 = 0 elsewhere)   a1[0] = 1
              z2[0] = a1[0] * W2[0,0] = 2                      a2[0] = 2
              z3[3] = a2[0] * W3[0,3] = 1, z3[c] = 0 for c != 3
              p[3] = e / (e + 9) = 0.2319693166840740,  p[c] = 1 / (e + 9) = 0.0853367425906585
              loss = -log p[3] = log(e + 9) - 1 = 1.461150171734475
    Backward: dz3 = p - Y:  dz3[3] = 0.2319693... - 1 = -0.7680306833159260, dz3[c] = 0.0853367425906585
              dW3[0,c] = a2[0] * dz3[c] = 2 dz3[c]:  dW3[0,3] = -1.536061366631852, dW3[0,c] = 0.1706734851813169
              db3 = dz3
              da2[0] = sum_c dz3[c] W3[0,c] = 0.5 * dz3[3] = -0.3840153416579630;  dz2[0] = da2[0] (z2[0] > 0)
              dW2[0,0] = a1[0] * dz2[0] = -0.3840153416579630 = db2[0]
              da1[0] = dz2[0] * W2[0,0] = -0.7680306833159260;  dz1[0] = da1[0] (z1[0] > 0)
              dW1[0,0] = x0 * dz1[0] = -0.7680306833159260 = db1[0]
              every other gradient is 0 (zero weights pass nothing back; relu'(0) = 0).
    Step (lr = 0.1; velocity starts at 0, so v = g and momentum does not matter yet):
              W1[0,0] = 1 - 0.1 * (-0.76803068...) = 1.076803068331593
              W2[0,0] = 2 - 0.1 * (-0.38401534...) = 2.038401534165796
              W3[0,3] = 0.5 - 0.1 * (-1.53606137...) = 0.6536061366631852
              W3[0,c] = 0 - 0.1 * 0.17067349 = -0.01706734851813169
              b1[0] = 0.07680306833159260, b2[0] = 0.03840153416579630
              b3[3] = 0.07680306833159260, b3[c] = -0.008533674259065847
    """
    params = zeros_like_params(init_params(0, np.float64))
    params.W1[0, 0], params.W2[0, 0], params.W3[0, 3] = 1.0, 2.0, 0.5
    before = copy_params(params)
    velocity = zeros_like_params(params)
    images = np.zeros((1, 784), dtype=np.uint8)
    images[0, 0] = 255
    labels = np.array([3])
    losses = get_backend(name).train_batches(params, velocity, images, labels, np.array([0]), 1,
                                             np.array([0.1]), 0.9)
    assert losses[0] == pytest.approx(1.461150171734475, abs=1e-15)
    expected = copy_params(before)
    expected.W1[0, 0] = 1.076803068331593
    expected.W2[0, 0] = 2.038401534165796
    expected.W3[0, :] = -0.01706734851813169
    expected.W3[0, 3] = 0.6536061366631852
    expected.b1[0] = 0.07680306833159260
    expected.b2[0] = 0.03840153416579630
    expected.b3[:] = -0.008533674259065847
    expected.b3[3] = 0.07680306833159260
    for field, got, want in zip(Params._fields, params, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-15, err_msg=f"{name}: {field} after the step")
    # v = momentum * 0 + g = g, so the update was -lr * v
    for field, v, w0, w1 in zip(Params._fields, velocity, before, params):
        np.testing.assert_allclose(w0 - 0.1 * v, w1, rtol=0, atol=1e-15, err_msg=f"{name}: velocity {field}")


@pytest.fixture(scope="module")
def trained_model(mnist_data, tmp_path_factory):
    """One epoch of the seed recipe's first epoch on the real data (numba: ~0.5 s), saved and reloaded."""
    train_images, train_labels = mnist_data[0], np.asarray(mnist_data[1], dtype=np.int64)
    params = init_params(0, np.float32)
    order = np.random.default_rng(0).permutation(len(train_images)).astype(np.int64)
    steps = math.ceil(len(order) / 64)
    get_backend("numba").train_batches(params, zeros_like_params(params), train_images, train_labels,
                                       order, 64, np.full(steps, 0.01), 0.9)
    path = tmp_path_factory.mktemp("model") / "one_epoch.npz"
    save_model(path, params, backend="numba")
    loaded, meta = load_model(path)
    assert meta["dtype"] == "float32"
    return loaded


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_identical_predictions_on_mnist_test_set(name, trained_model, mnist_data):
    test_images, test_labels = mnist_data[2], np.asarray(mnist_data[3])
    # naive runs ~50,000 multiply-adds per image in Python: 300 images take a few seconds
    count = 300 if name == "naive" else len(test_images)
    X = test_images[:count].astype(np.float32) / 255
    ref = get_backend("numpy").forward(trained_model, X)
    p = get_backend(name).forward(trained_model, X)
    assert np.array_equal(np.argmax(p, axis=1), np.argmax(ref, axis=1)), \
        f"{name}: {np.sum(np.argmax(p, axis=1) != np.argmax(ref, axis=1))} of {count} predictions differ"
    assert np.max(np.abs(p - ref)) < 1e-5, f"{name}: probabilities differ by more than float32 rounding"
    accuracy = np.mean(np.argmax(p, axis=1) == test_labels[:count])
    assert accuracy > 0.9, f"one epoch should reach > 90% (got {accuracy:.3f})"
