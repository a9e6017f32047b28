"""The convolutional network's layer ops, one at a time, on small shapes, in float64.

- The three backends agree: NumPy and Numba against the naive reference (the
  definition written out), to the relative error ``TOL64`` of tests/test_agreement.py
  and for the same reason: the backends add the same terms in different orders (im2col
  and BLAS blocking, fused multiply-adds); each order is exact to a few units of
  float64's eps (1.1e-16) per term, and the sums here have at most a few thousand
  terms, so they differ by ~1e-13 relative at worst; 1e-9 leaves a wide margin while a
  missed term or a wrong index shows at 1e-3 or more.
- Every gradient of every op passes central finite differences, on every backend, with
  :mod:`digitbench.gradcheck`'s tolerance and floor (the derivation is there).
- Max pooling's tie-breaking is the same everywhere: the first maximum in row-major
  order of the window wins the gradient.
- A wrong shape is a ValueError naming the op and the shapes.
"""

import numpy as np
import pytest

from digitbench.gradcheck import FLOOR, TOLERANCE
from digitbench.kernels.layer_ops import get_ops
from test_agreement import TOL64, rel_err

BACKENDS = ["naive", "numpy", "numba"]
FAST = ["numpy", "numba"]


def conv_case(seed, n=2, C=3, H=8, W_=6, O=4, k=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, C, H, W_)), rng.normal(size=(O, C, k, k)) * 0.3, rng.normal(size=O) * 0.1


#: (padding, kernel): the CNN's 5x5 with padding 2, a "valid" 5x5, and a 3x3 with padding 1
CONV_SHAPES = [(2, 5), (0, 5), (1, 3)]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("padding, k", CONV_SHAPES)
@pytest.mark.parametrize("C, O", [(3, 4), (5, 6)])  # numba: whole planes, and vectorized over channels
def test_conv2d_agrees_with_the_naive_definition(name, padding, k, C, O):
    X, W, b = conv_case(0, C=C, O=O, k=k)
    ref, ops = get_ops("naive"), get_ops(name, 2)
    Y = ops.conv2d_forward(X, W, b, padding)
    assert Y.shape == (2, O, 8 + 2 * padding - k + 1, 6 + 2 * padding - k + 1) and Y.dtype == np.float64
    assert rel_err(Y, ref.conv2d_forward(X, W, b, padding)) <= TOL64, f"{name}: conv2d_forward"
    dY = np.random.default_rng(1).normal(size=Y.shape)
    got, expected = ops.conv2d_backward(dY, X, W, padding), ref.conv2d_backward(dY, X, W, padding)
    for label, g, r, like in zip(("dX", "dW", "db"), got, expected, (X, W, b)):
        assert g.shape == like.shape, f"{name}: {label}"
        assert rel_err(g, r) <= TOL64, f"{name}: conv2d_backward {label}"


@pytest.mark.parametrize("name", FAST)
def test_pool_relu_dense_and_loss_agree_with_the_naive_definition(name):
    rng = np.random.default_rng(2)
    ref, ops = get_ops("naive"), get_ops(name, 2)
    X = rng.normal(size=(2, 3, 6, 4))
    dP = rng.normal(size=(2, 3, 3, 2))
    A, W, b = rng.normal(size=(3, 7)), rng.normal(size=(7, 5)), rng.normal(size=5)
    dZ, y = rng.normal(size=(3, 5)), np.array([0, 4, 2])
    pairs = [
        ("maxpool_forward", ops.maxpool_forward(X), ref.maxpool_forward(X)),
        ("maxpool_backward", ops.maxpool_backward(dP, X), ref.maxpool_backward(dP, X)),
        ("relu_forward", ops.relu_forward(X), ref.relu_forward(X)),
        ("relu_backward", ops.relu_backward(X * 2, X), ref.relu_backward(X * 2, X)),
        ("linear_forward", ops.linear_forward(A, W, b), ref.linear_forward(A, W, b)),
        ("softmax_forward", ops.softmax_forward(dZ), ref.softmax_forward(dZ)),
    ]
    pairs += [(f"linear_backward {label}", g, r) for label, g, r in
              zip(("dA", "dW", "db"), ops.linear_backward(dZ, A, W), ref.linear_backward(dZ, A, W))]
    (loss, dL), (ref_loss, ref_dL) = ops.softmax_cross_entropy(dZ, y), ref.softmax_cross_entropy(dZ, y)
    pairs += [("softmax_cross_entropy loss", loss, ref_loss), ("softmax_cross_entropy dZ", dL, ref_dL)]
    for label, got, expected in pairs:
        assert np.shape(got) == np.shape(expected), f"{name}: {label}"
        assert rel_err(got, expected) <= TOL64, f"{name}: {label}"


def numeric_gradient(f, array, index, eps=1e-5):
    """(f(a + eps) - f(a - eps)) / (2 eps), a = array[index], changed in place and restored."""
    saved = array[index]
    array[index] = saved + eps
    up = f()
    array[index] = saved - eps
    down = f()
    array[index] = saved
    return (up - down) / (2 * eps)


def assert_gradients(label, f, arrays, grads, entries=6, seed=0):
    """Central differences of the scalar f() at ``entries`` random places of each array."""
    rng = np.random.default_rng(seed)
    for name, array, grad in zip(("dX", "dW", "db"), arrays, grads):
        assert grad.shape == array.shape, f"{label}: {name} shape"
        for flat in rng.choice(array.size, size=min(entries, array.size), replace=False):
            index = np.unravel_index(flat, array.shape)
            numeric, analytic = numeric_gradient(f, array, index), float(grad[index])
            rel = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), FLOOR)
            assert rel <= TOLERANCE, f"{label}: {name}{index} analytic {analytic} numeric {numeric}"


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("padding, k", CONV_SHAPES)
def test_conv2d_gradients_pass_finite_differences(name, padding, k):
    """L = sum(Y * R), so dL/dY = R, on a small case (naive: one image, two channels)."""
    ops = get_ops(name, 2)
    X, W, b = conv_case(3, n=1, C=2, H=6, W_=5, O=3, k=k)
    R = np.random.default_rng(4).normal(size=ops.conv2d_forward(X, W, b, padding).shape)
    grads = ops.conv2d_backward(R, X, W, padding)
    assert_gradients(f"{name} conv2d", lambda: float(np.sum(ops.conv2d_forward(X, W, b, padding) * R)),
                     (X, W, b), grads)


@pytest.mark.parametrize("name", BACKENDS)
def test_maxpool_relu_dense_and_loss_gradients_pass_finite_differences(name):
    ops = get_ops(name, 2)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 2, 4, 6))  # continuous values: no ties, no z within eps of 0
    R = rng.normal(size=(2, 2, 2, 3))
    assert_gradients(f"{name} maxpool", lambda: float(np.sum(ops.maxpool_forward(X) * R)), (X,),
                     (ops.maxpool_backward(R, X),))
    S = rng.normal(size=X.shape)
    assert_gradients(f"{name} relu", lambda: float(np.sum(ops.relu_forward(X) * S)), (X,), (ops.relu_backward(S, X),))
    A, W, b, Q = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(3, 5))
    assert_gradients(f"{name} linear", lambda: float(np.sum(ops.linear_forward(A, W, b) * Q)), (A, W, b),
                     ops.linear_backward(Q, A, W))
    y = np.array([1, 0, 4])
    assert_gradients(f"{name} softmax_cross_entropy", lambda: ops.softmax_cross_entropy(Q, y)[0], (Q,),
                     ops.softmax_cross_entropy(Q, y)[1:])


@pytest.mark.parametrize("name", BACKENDS)
def test_maxpool_ties_go_to_the_first_maximum_in_row_major_order(name):
    ops = get_ops(name, 2)
    X = np.zeros((1, 1, 2, 6))
    X[0, 0, :, 0:2] = 1.0  # all four equal: (0, 0) wins
    X[0, 0, 1, 2:4] = 3.0  # the bottom row ties: (1, 0) wins
    X[0, 0, :, 4:6] = [[-2.0, 0.0], [0.0, -1.0]]  # the max 0 at (0, 1) and (1, 0): (0, 1) wins
    dX = ops.maxpool_backward(np.array([[[[10.0, 20.0, 30.0]]]]), X)
    expected = np.zeros_like(X)
    expected[0, 0, 0, 0], expected[0, 0, 1, 2], expected[0, 0, 0, 5] = 10.0, 20.0, 30.0
    np.testing.assert_array_equal(dX, expected, err_msg=name)
    np.testing.assert_array_equal(ops.maxpool_forward(X), [[[[1.0, 3.0, 0.0]]]], err_msg=name)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("call, match", [
    (lambda o: o.conv2d_forward(np.zeros((1, 2, 8, 8)), np.zeros((4, 3, 5, 5)), np.zeros(4), 2),
     r"conv2d_forward: X of shape \(1, 2, 8, 8\) has 2 channels but W of shape \(4, 3, 5, 5\) expects 3"),
    (lambda o: o.conv2d_forward(np.zeros((1, 3, 8)), np.zeros((4, 3, 5, 5)), np.zeros(4), 2),
     r"conv2d_forward: X of shape \(1, 3, 8\) should have 4 dimensions"),
    (lambda o: o.conv2d_forward(np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 5, 5)), np.zeros(3), 2),
     r"conv2d_forward: b of shape \(3,\) should be \(4,\)"),
    (lambda o: o.conv2d_backward(np.zeros((1, 4, 8, 7)), np.zeros((1, 3, 8, 8)), np.zeros((4, 3, 5, 5)), 2),
     r"conv2d_backward: dY of shape \(1, 4, 8, 7\) should be \(1, 4, 8, 8\)"),
    (lambda o: o.maxpool_forward(np.zeros((1, 3, 7, 8))), r"maxpool_forward: X of shape \(1, 3, 7, 8\)"),
    (lambda o: o.maxpool_backward(np.zeros((1, 3, 4, 3)), np.zeros((1, 3, 8, 8))),
     r"maxpool_backward: dY of shape \(1, 3, 4, 3\) should be \(1, 3, 4, 4\)"),
    (lambda o: o.linear_forward(np.zeros((2, 5)), np.zeros((6, 3)), np.zeros(3)),
     r"linear_forward: A of shape \(2, 5\) has 5 features but W of shape \(6, 3\) expects 6"),
    (lambda o: o.softmax_cross_entropy(np.zeros((2, 10)), [0, 10]), r"softmax_cross_entropy: labels"),
])
def test_a_wrong_shape_is_a_clear_error(name, call, match):
    with pytest.raises(ValueError, match=match):
        call(get_ops(name))


def test_an_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="naive, numpy, numba"):
        get_ops("torch")


def test_float32_stays_float32_and_close_to_float64():
    """float32: within 1e-4 of the float64 result (tests/test_agreement.py's TOL32: a sum of
    K terms has a relative error up to ~K * 6e-8, K = 400 here)."""
    X, W, b = conv_case(6, n=2, C=16, H=14, W_=14, O=4)
    exact = get_ops("numpy").conv2d_forward(X, W, b, 2)
    for name in FAST:
        Y = get_ops(name).conv2d_forward(X.astype(np.float32), W.astype(np.float32), b.astype(np.float32), 2)
        assert Y.dtype == np.float32, name
        assert rel_err(Y, exact) <= 1e-4, name


def test_a_backward_without_the_kernel_flip_would_be_caught():
    """dX as the correlation with W's channels swapped but not flipped fails the check."""
    ops = get_ops("numpy")
    X, W, b = conv_case(7, n=1, C=2, H=6, W_=5, O=3)
    R = np.random.default_rng(8).normal(size=ops.conv2d_forward(X, W, b, 2).shape)
    _, dW, db = ops.conv2d_backward(R, X, W, 2)
    unflipped = ops.conv2d_forward(R, np.ascontiguousarray(W.transpose(1, 0, 2, 3)), np.zeros(2), 2)
    with pytest.raises(AssertionError, match="dX"):
        assert_gradients("unflipped", lambda: float(np.sum(ops.conv2d_forward(X, W, b, 2) * R)), (X, W, b),
                         (unflipped, dW, db))
