"""The asv suite's own logic: frozen yardstick, recipes, thread holding, peak memory, tools.

The benchmarks package sets thread variables in ``os.environ`` when imported; the
``suite`` fixture imports it with the environment saved and restored, so nothing leaks
into the other tests' subprocesses.
"""

import importlib
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import digitbench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    saved = dict(os.environ)
    sys.path.insert(0, str(ROOT))
    try:
        common = importlib.import_module("benchmarks.common")
        recipes = importlib.import_module("benchmarks.recipes")
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)
    return common, recipes


@pytest.fixture(scope="module")
def tools():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return importlib.import_module("asv_env"), importlib.import_module("publish_offline")
    finally:
        sys.path.remove(str(ROOT / "tools"))


def test_reference_step_is_the_numpy_backends_step(suite):
    """The frozen yardstick computes the real SGD step: the same new weights as the NumPy backend."""
    common, _ = suite
    p, v, X, y = common.reference_inputs(64)
    params = digitbench.Params(*(w.copy() for w in p))
    velocity = digitbench.Params(*(np.zeros_like(w) for w in p))
    images, labels = common.train_arrays()
    loss_ref = common.reference_step(p, v, X, y, lr=0.01, momentum=0.9)
    losses = digitbench.get_backend("numpy").train_batches(params, velocity, images, labels,
                                                           np.arange(64, dtype=np.int64), 64, np.full(1, 0.01), 0.9)
    assert loss_ref == pytest.approx(losses[0], rel=1e-5)
    for name, ours, theirs in zip(digitbench.Params._fields, p, params):
        # float32 sums in another order: differences of a few ulps of the update
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7, err_msg=name)


def test_learning_rates_by_hand(suite):
    _, recipes = suite
    seed = recipes.learning_rates(recipes.RECIPES["seed"], steps_per_epoch=3)
    assert seed.shape == (90,)
    # epoch 0: 0.01; epoch 1: 0.01 / 1.05; epoch 29: 0.01 / (1 + 0.05 * 29) = 0.01 / 2.45
    np.testing.assert_allclose(seed[[0, 2, 3, 89]], [0.01, 0.01, 0.01 / 1.05, 0.01 / 2.45])
    fast = recipes.learning_rates(recipes.RECIPES["fast"], steps_per_epoch=5)
    # 10 steps from 0.1 down by 0.01 a step: 0.1, 0.09, ..., 0.01
    np.testing.assert_allclose(fast, 0.1 - 0.01 * np.arange(10))
    centred = recipes.learning_rates(recipes.RECIPES["fast-centred"], steps_per_epoch=5)
    # 0.1 * max(0.1, 1 - t) at t = step / 5: 0.1, 0.08, 0.06, 0.04, 0.02, then 0.01
    np.testing.assert_allclose(centred, [0.1, 0.08, 0.06, 0.04, 0.02] + [0.01] * 5)


def test_the_centred_recipe_trains_as_digitbench_does_and_skips_old_backends(suite):
    """The asv copy of the centred recipe passes the training set's mean image to every
    ``train_batches`` call; a backend without ``mean`` (an older commit) is skipped."""
    _, recipes = suite
    from digitbench.datasets import synthetic_data

    data = synthetic_data(3, 128, 32)
    recipe = dict(recipes.RECIPES["fast-centred"], epochs=1, batch_size=32)
    ours = digitbench.get_backend("numpy")
    calls = []
    train_batches = ours.train_batches

    def recording(params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None):
        calls.append(mean)
        return train_batches(params, velocity, images, labels, order, batch_size, lrs, momentum, mean=mean)

    ours.train_batches = recording
    recipes.train(ours, data, recipe)
    mean = data.train_images.mean(axis=0) / 255
    assert calls and all(np.allclose(given, mean, atol=1e-7) for given in calls)

    class Old:
        def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0):
            raise AssertionError("not to be called")

    with pytest.raises(NotImplementedError, match="centred"):
        recipes.train(Old(), data, recipe)


def test_he_params_shapes_and_spread(suite):
    _, recipes = suite
    p = recipes.he_params()
    assert [w.shape for w in p] == [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    assert p.W1.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02) and not p.b1.any()


def test_hold_threads_refuses_a_count_numba_cannot_reach(suite):
    common, _ = suite
    numba = pytest.importorskip("numba")
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools on exit
        try:
            common.hold_threads(1)
            assert numba.get_num_threads() == 1
            with pytest.raises(RuntimeError, match=r"cannot hold \d+ thread"):
                common.hold_threads(numba.config.NUMBA_NUM_THREADS + 1)
        finally:
            numba.set_num_threads(before)


def test_epoch_peak_mb_sees_the_runs_own_allocation(suite):
    common, _ = suite
    try:
        empty = common.epoch_peak_mb(lambda: None)
    except NotImplementedError as e:
        pytest.skip(str(e))
    # 40 MB written page by page, then freed: the peak sees it, the baseline does not
    touched = common.epoch_peak_mb(lambda: np.ones(40_000_000, dtype=np.uint8))
    assert empty < 2 and 38 < touched < 45


def test_constraints_pin_every_dependency_of_this_commit(tools):
    asv_env, _ = tools
    pins = asv_env.pins()
    needed = asv_env.closure(("digitbench",) + asv_env.HARNESS) - {"digitbench"}
    assert {"numpy", "numba", "llvmlite", "threadpoolctl"} <= needed
    assert "pytest" not in needed and "torch" not in needed  # extras are not dependencies
    assert sorted(needed - set(pins)) == []


def test_published_page_loads_nothing_from_the_internet(tools):
    _, publish = tools
    asv = pytest.importorskip("asv", reason="needs the bench extra (asv): pip install -e '.[bench]'")
    page = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    local = publish.localize(page)
    assert re.findall(r'<(?:script|link)[^>]*(?:src|href)="https?://', local) == []
    shipped = {target for files in publish.NPM_PACKAGES.values() for target in files.values()}
    used = set(re.findall(r'"vendor/([^"]+)"', local))
    assert used and used <= shipped


@pytest.fixture(scope="module")
def cnn_suite(suite):
    saved = dict(os.environ)
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("benchmarks.bench_cnn")
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def threads_restored():
    """The benchmarks hold BLAS and numba at their count: given back to the other tests after."""
    from threadpoolctl import threadpool_limits

    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools on exit
        yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_cnn_layer_benchmarks_time_each_layer_on_its_own_input(cnn_suite, backend, threads_restored):
    """Every CNN layer's asv forward and backward run on the input the network gives that
    layer, with the shapes it declares; numba's agree with NumPy's."""
    from digitbench.networks import CNN

    declared = {layer.name: layer for layer in CNN.layers}
    reference = {}
    for layer in cnn_suite.LAYERS:
        for kind in (backend, "numpy"):
            forward, backward = cnn_suite.CnnLayerForward(), cnn_suite.CnnLayerBackward()
            forward.setup("fast", kind, layer, 2)
            backward.setup("fast", kind, layer, 2)
            assert forward.x.shape == (2, *declared[layer].in_shape)
            out, grads = forward.forward(), backward.backward()
            assert out.shape == (2, *declared[layer].out_shape), layer
            first = grads[0] if isinstance(grads, tuple) else grads
            assert first.shape == forward.x.shape, layer
            reference[kind] = (out, first)
        forward.time_cnn_layer_forward("fast", backend, layer, 2)
        backward.time_cnn_layer_backward("fast", backend, layer, 2)
        for ours, theirs in zip(reference[backend], reference["numpy"]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=f"{backend} {layer}")


def test_cnn_train_step_and_time_to_99_run_through_train_batches(cnn_suite, monkeypatch, threads_restored):
    from digitbench.datasets import synthetic_data

    step = cnn_suite.CnnTrainStep()
    step.setup("fast", "numpy")
    before = step.weights.W3.copy()
    step.time_cnn_train_step("fast", "numpy")
    assert not np.array_equal(step.weights.W3, before)
    # time to 99%: the frozen recipe, one epoch of a few digits per backend, cached; naive skipped
    small = tuple(synthetic_data(2, 64, 16))
    monkeypatch.setattr(cnn_suite, "mnist", lambda: small)
    monkeypatch.setitem(cnn_suite.RECIPES, "cnn-fast", dict(cnn_suite.RECIPES["cnn-fast"], epochs=1))
    fixed = cnn_suite.CnnFixedRecipe()
    cache = fixed.setup_cache()
    for backend in cnn_suite.TRAINABLE:
        fixed.setup(cache, "fast", backend)
        assert fixed.track_cnn_fixed_recipe_train_seconds(cache, "fast", backend) > 0
        assert 0 <= fixed.track_cnn_fixed_recipe_test_error(cache, "fast", backend) <= 100
    monkeypatch.setattr(cnn_suite, "mnist", lambda: None)
    with pytest.raises(NotImplementedError, match="real MNIST"):
        fixed.setup(fixed.setup_cache(), "fast", "numpy")


def test_the_cnn_benchmarks_leave_the_mlps_series_alone(cnn_suite, suite):
    """New names only: the MLP's benchmark names and recipes are as they were."""
    _, recipes = suite
    names = {name for cls in vars(cnn_suite).values() if isinstance(cls, type)
             for name in vars(cls) if name.startswith(("time_", "track_", "peakmem_"))}
    assert names and all("cnn" in name for name in names)
    assert recipes.RECIPES["fast-fixed"]["epochs"] == 1 and "cnn-fast" in recipes.RECIPES
