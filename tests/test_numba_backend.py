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


@pytest.mark.parametrize("rows", [1, 31, 32, 100, 255, 256, 1000])
def test_forward_and_predict_agree_with_numpy_on_every_path(rows):
    """Below PARALLEL_MIN_ROWS (32) one thread runs every row; from it on, one part per
    thread; from DENSE_MIN_ROWS (256) on, BLAS on the frequent pixels, in blocks of 256. All
    agree with NumPy to float64 rounding (see test_agreement.py's TOL64), and predict
    is the argmax of forward."""
    from digitbench.kernels.numba_infer import DENSE_MIN_ROWS, PARALLEL_MIN_ROWS

    assert (PARALLEL_MIN_ROWS, DENSE_MIN_ROWS) == (32, 256)
    rng = np.random.default_rng(rows)
    X = rng.random((rows, 784))
    X[rng.random((rows, 784)) < 0.8] = 0
    X[0, :] = 0  # an all-black image: only the biases
    params = init_params(4, np.float64)
    numba_backend, reference = get_backend("numba"), get_backend("numpy")
    p, ref = numba_backend.forward(params, X), reference.forward(params, X)
    assert p.shape == (rows, 10)
    assert np.max(np.abs(p - ref)) <= 1e-9 * np.max(np.abs(ref)), f"{rows} rows"
    labels = numba_backend.predict(params, X)
    assert labels.dtype == np.int64 and np.array_equal(labels, np.argmax(ref, axis=1))


@pytest.mark.parametrize("case", ["mixed", "black", "all-dense"])
def test_blas_path_adds_frequent_and_rare_pixels_once_each(case):
    """From DENSE_MIN_ROWS rows on, the pixels non-zero in more than FREQUENT_SHARE of a
    block's rows go into the BLAS product and the others into the lists: every non-zero
    pixel is counted once, whether a block has both kinds, none (all black) or only
    frequent ones."""
    from digitbench.kernels.numba_infer import DENSE_MIN_ROWS, FREQUENT_SHARE, split_pixels

    rng = np.random.default_rng(5)
    rows = 2 * DENSE_MIN_ROWS + 37
    X = rng.random((rows, 784))
    if case == "mixed":  # pixels 0-299 in ~90% of the rows, the others in ~5%
        X[:, :300] *= rng.random((rows, 300)) < 0.9
        X[:, 300:] *= rng.random((rows, 484)) < 0.05
    elif case == "black":
        X[:] = 0
    count, cols, listed = np.empty(784, np.int32), np.empty(784, np.int64), np.empty(784, np.uint8)
    nonzero = np.empty((DENSE_MIN_ROWS, 784), np.uint8)
    m = split_pixels(X[:DENSE_MIN_ROWS], FREQUENT_SHARE, count, cols, listed, nonzero)
    assert np.array_equal(nonzero, X[:DENSE_MIN_ROWS] != 0)
    frequent = np.zeros(784, bool)
    frequent[cols[:m]] = True
    assert np.array_equal(listed == 0, frequent)
    assert np.array_equal(count, (X[:DENSE_MIN_ROWS] != 0).sum(axis=0))
    assert m == {"mixed": 300, "black": 0, "all-dense": 784}[case]
    params = init_params(6, np.float64)
    p, ref = get_backend("numba").forward(params, X), get_backend("numpy").forward(params, X)
    assert np.max(np.abs(p - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_predict_takes_the_first_maximum_as_numpy_does():
    from digitbench.kernels.numba_infer import argmax_rows

    p = np.array([[0.1, 0.4, 0.4, 0.1], [np.nan, 0.5, np.nan, 0.5], [0.2, np.nan, 0.9, 0.0]])
    labels = np.empty(3, np.int64)
    argmax_rows(p, labels)
    assert np.array_equal(labels, np.argmax(p, axis=1))


@pytest.mark.parametrize("rows", [5, 300])
def test_overflowing_weights_give_non_finite_outputs_as_numpy_does(rows):
    """relu must let a NaN through (as np.maximum does): otherwise an overflowing model
    (inf - inf = NaN in layer 1) answers a finite, uniform 0.1 and is scored silently."""
    params = init_params(0, np.float32)
    params = params._replace(W1=np.sign(params.W1) * np.float32(3e38))
    X = np.random.default_rng(0).integers(0, 256, (rows, 784)).astype(np.uint8)
    with np.errstate(all="ignore"):
        reference = np.isfinite(get_backend("numpy").forward(params, X)).all(axis=1)
    assert not reference.any()
    assert np.array_equal(np.isfinite(get_backend("numba").forward(params, X)).all(axis=1), reference)


def test_trailing_zero_bits_compiled_and_plain_agree():
    from numba import njit

    from digitbench.kernels.numba_sparse import trailing_zero_bits

    compiled = njit(lambda x: trailing_zero_bits(x))
    for k in (0, 1, 3, 8, 40, 63):
        for x in (np.uint64(1) << np.uint64(k), (np.uint64(1) << np.uint64(k)) | (np.uint64(1) << np.uint64(63))):
            assert trailing_zero_bits(x) == compiled(x) == k, (k, x)


def test_blas_single_thread_holds_every_blas_library_at_one_and_restores_it():
    from threadpoolctl import threadpool_info

    from digitbench.threads import blas_single_thread

    def blas():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with blas_single_thread():  # the first call loads SciPy's BLAS too
        pass
    before = blas()
    with blas_single_thread():
        assert set(blas().values()) == {1}, blas()
        with blas_single_thread():  # nested: still one, and the outer restore is unchanged
            pass
        assert set(blas().values()) == {1}
    assert blas() == before


def test_the_stack_row_kernels_refuse_other_widths_and_keep_rows_apart():
    from digitbench.kernels.numba_layers import linear_backward_sparse, linear_forward_sparse
    from digitbench.kernels.numba_sparse import new_sparse, sparse_from_float

    rng = np.random.default_rng(3)
    X = (rng.random((5, 784)) < 0.2) * rng.random((5, 784))
    sp = new_sparse(5, 784, np.float64)
    sparse_from_float(X, sp, True)
    narrow = np.zeros((784, 64))
    with pytest.raises(ValueError, match="128 units"):
        linear_forward_sparse(0, 5, sp, narrow, np.zeros(64), np.zeros((5, 64)))
    with pytest.raises(ValueError, match="128 units"):
        linear_backward_sparse(sp, np.zeros((5, 64)), np.zeros((784, 64)), 0, 784)
    # each sample's and each pixel's sum starts afresh in the kernel's stack row
    W1, b1 = rng.standard_normal((784, 128)), rng.standard_normal(128)
    z1, dz1, dW1 = np.empty((5, 128)), rng.standard_normal((5, 128)), np.zeros((784, 128))
    linear_forward_sparse(0, 5, sp, W1, b1, z1)
    linear_backward_sparse(sp, dz1, dW1, 0, 784)
    assert np.allclose(z1, X @ W1 + b1, rtol=1e-12, atol=1e-12)
    assert np.allclose(dW1, X.T @ dz1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("split", [0, 1, 300, 392, 783, 784])
def test_the_csc_sorted_in_two_pixel_ranges_is_the_whole_sort(split):
    from digitbench.kernels.numba_sparse import csc_of_pixels, new_sparse, sparse_from_float

    rng = np.random.default_rng(split)
    X = ((rng.random((9, 784)) < 0.2) * rng.random((9, 784))).astype(np.float32)
    whole, halves = new_sparse(9, 784, np.float32), new_sparse(9, 784, np.float32)
    sparse_from_float(X, whole, True)
    sparse_from_float(X, halves, False)
    halves.col_ptr[:] = -1
    csc_of_pixels(9, halves, split, 784)  # either order: each range writes only its own places
    csc_of_pixels(9, halves, 0, split)
    m = whole.row_ptr[9]
    assert np.array_equal(halves.col_ptr, whole.col_ptr)
    assert np.array_equal(halves.row_idx[:m], whole.row_idx[:m]) and np.array_equal(halves.vals[:m], whole.vals[:m])
    rows, cols = np.nonzero(X.T)  # by pixel, then by sample: the CSC order
    assert np.array_equal(whole.row_idx[:m], cols) and np.array_equal(whole.vals[:m], X.T[rows, cols])
