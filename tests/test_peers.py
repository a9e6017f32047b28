"""The peers train the same network with the same recipe as digitbench.

Each real peer (PyTorch eager, JAX step and scan, scikit-learn) is prepared on tiny
random data beside digitbench's NumPy backend; both start from ``init_params(seed)``
and take the same batches at the same rates, so their weights must agree after a few
steps to float32 rounding. torch.compile is too slow to compile in a unit test (about
a minute of inductor here): its failure path is tested with a compiler that fails.
"""

import importlib.util

import numpy as np
import pytest

from digitbench import bench, get_backend
from digitbench.commands import bench as bench_command
from digitbench.datasets import synthetic_data


def tiny_data(n_train=256, n_test=64, seed=0):
    """Random uint8 pixels (81% zeros, like MNIST) and labels of MNIST's shapes."""
    return synthetic_data(seed, n_train, n_test)


def make(name):
    from digitbench.peers import JaxContender, SklearnContender, TorchContender

    return {"pytorch": lambda: TorchContender(1), "jax-step": lambda: JaxContender(1),
            "jax-scan": lambda: JaxContender(1, scan=True), "scikit-learn": lambda: SklearnContender(1)}[name]()


MODULES = {"pytorch": "torch", "jax-step": "jax", "jax-scan": "jax", "scikit-learn": "sklearn"}


@pytest.mark.parametrize("name", MODULES)
def test_a_peer_trains_like_digitbench(name):
    if importlib.util.find_spec(MODULES[name]) is None:
        pytest.skip(f"{MODULES[name]} is not installed; needs the compare extra: pip install -e '.[compare]'")
    data, batch = tiny_data(), 32
    peer, reference = make(name), bench.BackendContender(get_backend("numpy"))
    peer.prepare(data, batch, seed=3)
    reference.prepare(data, batch, seed=3)
    for ours, theirs, what in zip(reference.weights(), peer.weights(), "W1 b1 W2 b2 W3 b3".split()):
        np.testing.assert_array_equal(theirs, ours, err_msg=f"{name}: initial {what} is not init_params(3)'s")
    start = [w.copy() for w in reference.weights()]
    # 5 full steps and a short one; scikit-learn takes one rate per call: a constant one
    order = np.random.default_rng(1).permutation(len(data.train_images))[:5 * batch + 7].astype(np.int64)
    lrs = None if name == "scikit-learn" else np.linspace(0.2, 0.05, 6)
    peer.train(order, lrs)
    reference.train(order, lrs)
    for ours, theirs, first, what in zip(reference.weights(), peer.weights(), start, "W1 b1 W2 b2 W3 b3".split()):
        assert np.abs(ours - first).max() > 1e-4, f"{what} did not move: the test would prove nothing"
        # float32, six steps: only the summation order differs (BLAS, XLA, autograd); measured
        # differences are a few ulp (6e-8) against weight changes of 1e-2 to 7e-2
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-6, err_msg=f"{name}: {what} after 6 steps")
    np.testing.assert_array_equal(peer.predict(peer.test), reference.predict(reference.test))
    peer.reset(3)
    np.testing.assert_array_equal(peer.weights().W1, start[0], err_msg=f"{name}: reset(3) is not init_params(3)")


def test_a_failing_peer_is_a_row_with_its_reason_not_a_crash(monkeypatch, capsys):
    pytest.importorskip("torch", reason="needs the compare extra: pip install -e '.[compare]'")
    import torch

    from digitbench.peers import TorchContender

    def no_compiler(model, *args, **kwargs):
        def fail(*a, **k):
            raise RuntimeError("InductorError: no C++ compiler found\nsecond line of detail")
        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)

    class Args:
        batch_size, quick = 32, True

    record = bench_command._measure_one(TorchContender(1, compiled=True), tiny_data(), Args, 1)
    assert record["name"] == "torch.compile"
    assert record["error"] == "RuntimeError: InductorError: no C++ compiler found"
    assert "torch.compile: not measured (RuntimeError" in capsys.readouterr().out


def test_a_failing_digitbench_backend_is_raised(monkeypatch):
    contender = bench.BackendContender(get_backend("numpy"))
    monkeypatch.setattr(contender, "prepare", lambda *a, **k: 1 / 0)

    class Args:
        batch_size, quick = 32, True

    with pytest.raises(ZeroDivisionError):
        bench_command._measure_one(contender, tiny_data(), Args, 1)


def test_jax_threads_are_set_before_jax_is_imported():
    from digitbench.peers.jax_peer import xla_thread_flags

    # XLA aborts the process on an unknown flag: these are the two it knows
    assert xla_thread_flags(3) == "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=3"


def test_missing_extra_names_what_to_install(monkeypatch):
    from digitbench import peers
    from digitbench.errors import UsageError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "jax" else object())
    assert peers.missing_peers() == ["jax==0.10.2"]
    with pytest.raises(UsageError, match=r"missing jax==0.10.2\); run: python -m pip install -e '.\[compare\]'"):
        peers.make_peers(1)


@pytest.mark.parametrize("name", MODULES)
def test_a_peer_trains_centred_like_digitbench(name):
    """With ``reset(seed, mean)`` a peer trains on x - mean (its first bias is the centred
    network's, c), digitbench the raw network with b1 = c - mean @ W1: the same model."""
    if importlib.util.find_spec(MODULES[name]) is None:
        pytest.skip(f"{MODULES[name]} is not installed; needs the compare extra: pip install -e '.[compare]'")
    from digitbench.pixels import mean_image

    data, batch = tiny_data(), 32
    mean = mean_image(data.train_images)
    peer, reference = make(name), bench.BackendContender(get_backend("numpy"))
    peer.prepare(data, batch, seed=3)
    reference.prepare(data, batch, seed=3)
    peer.reset(3, mean)
    reference.reset(3, mean)
    order = np.random.default_rng(1).permutation(len(data.train_images))[:5 * batch + 7].astype(np.int64)
    lrs = None if name == "scikit-learn" else np.linspace(0.2, 0.05, 6)
    peer.train(order, lrs)
    reference.train(order, lrs)
    theirs = peer.weights()
    theirs = theirs._replace(b1=theirs.b1 - mean @ theirs.W1)  # the raw network's first bias
    for ours, mine, what in zip(reference.weights(), theirs, "W1 b1 W2 b2 W3 b3".split()):
        np.testing.assert_allclose(mine, ours, rtol=1e-4, atol=1e-5, err_msg=f"{name}: centred {what} after 6 steps")
    np.testing.assert_array_equal(peer.predict(peer.test), reference.predict(reference.test))
