"""The numba CNN's compiled training step against the layer-by-layer composition.

The step (kernels/numba_cnn.py) keeps every activation channels last and calls the
tiles of kernels/conv_tiles.py directly; the layer ops (kernels/conv_numba.py) run the
same tiles behind PyTorch's layout. The same kernels in the same order: the gradients
must be the same bits. The tiles themselves are checked against the plane kernels that
the ops use for shapes the tiles do not fit, and the whole step for the same bits on
1, 2 and 3 threads (including a last, shorter batch).
"""

import hashlib

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from digitbench.backends import get_backend  # noqa: E402
from digitbench.kernels import conv_numba, conv_tiles, numba_cnn  # noqa: E402
from digitbench.kernels.layer_ops import get_ops  # noqa: E402
from digitbench.kernels.layer_pass import loss_and_grads  # noqa: E402
from digitbench.networks import CNN, init_params  # noqa: E402
from digitbench.threads import blas_single_thread  # noqa: E402
from numba_cases import digests_on_threads  # noqa: E402


def images(count, seed=0):
    """``count`` sparse uint8 images (count, 784) and labels, MNIST-like."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(count, 784)) * (rng.random((count, 784)) < 0.25)
    return pixels.astype(np.uint8), rng.integers(0, 10, size=count).astype(np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_step_gives_the_layer_by_layer_gradients_bit_for_bit(dtype):
    X, y = images(6)
    params = init_params(CNN, 3, dtype)
    work = numba_cnn.new_work(6, dtype)
    numba_cnn.load_batch(X, np.arange(6), work.x1)
    grads = CNN.params_type(*(np.empty_like(p) for p in params))
    loss = numba_cnn.cnn_gradients(tuple(params), tuple(grads), work, y, 2) / 6
    expected_loss, expected = loss_and_grads(CNN, params, (X / 255).astype(dtype), y, get_ops("numba", 2))
    assert loss == expected_loss
    for name, got, want in zip(CNN.params_type._fields, grads, expected):
        assert np.array_equal(got, want), name


def test_one_step_of_training_agrees_with_the_numpy_backend():
    X, y = images(16, seed=1)
    runs = {}
    for name in ("numba", "numpy"):
        params = init_params(CNN, 0, np.float64)
        velocity = CNN.params_type(*(np.zeros_like(p) for p in params))
        losses = get_backend(name, "cnn").train_batches(params, velocity, X, y, np.arange(16), 8,
                                                        np.array([0.05, 0.05]), 0.9)
        runs[name] = (losses, params)
    np.testing.assert_allclose(runs["numba"][0], runs["numpy"][0], rtol=1e-12)
    for got, want in zip(runs["numba"][1], runs["numpy"][1]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("C,O,side", [(16, 32, 6), (1, 16, 8), (32, 16, 4)])
def test_the_tiles_agree_with_the_plane_kernels(C, O, side):
    rng = np.random.default_rng(C)
    X = rng.standard_normal((3, C, side, side))
    W, b = rng.standard_normal((O, C, 5, 5)), rng.standard_normal(O)
    Y = conv_numba.conv2d_forward(X, W, b, 2)  # tiles: O a multiple of 16, even sides
    planes = np.empty_like(Y)
    conv_numba.correlate_kernel(conv_numba.padded(X, 2), W, b, planes, 1)
    np.testing.assert_allclose(Y, planes, rtol=1e-12, atol=1e-12)
    dY = rng.standard_normal(Y.shape)
    dX, dW, db = conv_numba.conv2d_backward(dY, X, W, 2)
    dWt, db_planes = np.empty((C, 5, 5, O)), np.empty(O)
    conv_numba.weight_grad_kernel(np.ascontiguousarray(dY.transpose(0, 2, 3, 1)), conv_numba.padded(X, 2), dWt,
                                  db_planes, 1)
    np.testing.assert_allclose(dW, dWt.transpose(3, 0, 1, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_planes, rtol=1e-12)
    expected_dX = conv_numba.conv2d_forward(dY, np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)),
                                            np.zeros(C), 2)
    np.testing.assert_allclose(dX, expected_dX, rtol=1e-12, atol=1e-12)


def test_relu_and_pool_fused_equal_the_two_ops():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((2, 16, 6, 6))
    Z[0, 0, :2, :2] = -1.0  # a window with no positive value
    Z[1, 3, 2:4, 2:4] = 0.5  # a tie: the first wins
    ops = get_ops("numba")
    A = ops.maxpool_forward(ops.relu_forward(Z))
    Zt = np.ascontiguousarray(Z.transpose(0, 2, 3, 1))
    fused = np.empty((2, 3, 3, 16))
    conv_tiles.relu_pool(Zt, fused, 0, False, 1)
    assert np.array_equal(fused.transpose(0, 3, 1, 2), A)
    dA = rng.standard_normal(A.shape)
    expected = ops.relu_backward(ops.maxpool_backward(dA, ops.relu_forward(Z)), Z)
    dZ = np.empty_like(Zt)
    conv_tiles.relu_pool_backward(np.ascontiguousarray(dA), Zt, dZ, 0, True, 1)
    assert np.array_equal(dZ.transpose(0, 3, 1, 2), expected)


def digest(threads, dtype=np.float32):
    """A hash of the losses and weights after 3 steps of batch 4 over 11 images (the last
    batch has 3) on ``threads`` threads, BLAS on one thread as the trainer holds it (the
    dense layers' products on two BLAS threads are other bits)."""
    X, y = images(11, seed=2)
    params = init_params(CNN, 0, dtype)
    velocity = CNN.params_type(*(np.zeros_like(p) for p in params))
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with blas_single_thread():
            losses = get_backend("numba", "cnn").train_batches(params, velocity, X, y, np.arange(11)[::-1], 4,
                                                               np.full(3, 0.05), 0.9, threads=threads)
    finally:
        numba.set_num_threads(previous)
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in (losses, *params))).hexdigest()


def test_the_step_gives_the_same_bits_on_one_two_and_three_threads():
    found = digests_on_threads("test_cnn_numba_step", "digest")
    assert len(found) == 3 and len(set(found.values())) == 1, found


FORWARD_BOTH_LAYERS = """
import sys, numpy as np
from digitbench.kernels import conv_tiles
data = np.load(sys.argv[1])
for name in ("conv1", "conv2"):
    rows, Wb, b, Y = (data[name + key] for key in ("_rows", "_Wb", "_b", "_Y"))
    Y = np.zeros_like(Y)
    conv_tiles.correlate(rows, rows.shape[2] // (Y.shape[2] + 4), Wb, b, Y, 1)
    np.save(sys.argv[2] + name + ".npy", Y)
print(conv_tiles.WIDE_TILES)
"""


@pytest.mark.skipif(not conv_tiles.IS_X86, reason="the AVX2 target is an x86 CPU")
def test_the_avx2_tiles_give_the_same_bits(tmp_path):
    """The forward tiles follow the target CPU (2 x 4 pixels with AVX-512, 2 x 2 with
    AVX2): both convolutions compiled for an AVX2 CPU (haswell) in a fresh process give
    the bits they give here. On a machine without AVX-512 both sides run the 2 x 2
    tiles; the comparison of the two tile shapes needs an AVX-512 machine."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(7)
    arrays = {}
    for name, C, O, side in (("conv1", 1, 16, 28), ("conv2", 16, 32, 14)):
        rows = rng.standard_normal((2, side + 4, (side + 4) * C)).astype(np.float32)
        W, b = rng.standard_normal((O, C, 5, 5)).astype(np.float32), rng.standard_normal(O).astype(np.float32)
        Wb = np.zeros((O // 16, 5, 5 * C, 16), np.float32)
        conv_tiles.block_weights(W, False, Wb)
        Y = np.zeros((2, side, side, O), np.float32)
        conv_tiles.correlate(rows, C, Wb, b, Y, 1)
        arrays.update({name + "_rows": rows, name + "_Wb": Wb, name + "_b": b, name + "_Y": Y})
    np.savez(tmp_path / "inputs.npz", **arrays)
    # empty features: haswell's own (unset, numba would add this machine's, AVX-512 perhaps)
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", FORWARD_BOTH_LAYERS, str(tmp_path / "inputs.npz"), str(tmp_path) + "/"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]  # the AVX2 tiles ran there
    for name in ("conv1", "conv2"):
        assert np.array_equal(np.load(tmp_path / f"{name}.npy"), arrays[name + "_Y"]), name
