"""The backend protocol declared on Backend, and the trainer's use of it.

uint8 input is scaled the same way by every backend; warm-up is never on the training
clock; the chunk runner respects ``steps_per_call``; the loop's named steps keep the
promises of the module docstring (divergence at the last step, per-chunk learning
rates, one-call API). Data: seeded synthetic pixels, so no MNIST files are needed.
"""

import time

import numpy as np
import pytest

import digitbench
from digitbench import get_backend, init_params
from digitbench.backends import BACKENDS
from digitbench.datasets import MnistData, synthetic_data
from digitbench.errors import TrainingDiverged, UsageError
from digitbench.kernels.base import Backend
from digitbench.kernels.numpy_backend import NumpyBackend
from digitbench.pixels import scale_pixels
from digitbench.recipe import MAX_EPOCHS, Recipe, learning_rates
from digitbench.sgd import chunk_bounds

SYNTHETIC = synthetic_data(seed=7)


def tiny(n_train=640, n_test=200):
    return MnistData(SYNTHETIC.train_images[:n_train], SYNTHETIC.train_labels[:n_train],
                     SYNTHETIC.test_images[:n_test], SYNTHETIC.test_labels[:n_test])


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    return get_backend(request.param)


def test_every_backend_declares_the_protocol_and_nothing_else(backend):
    assert isinstance(backend, Backend)
    assert backend.steps_per_call is None or (isinstance(backend.steps_per_call, int) and backend.steps_per_call > 0)
    assert not hasattr(backend, "max_steps_per_call")  # the old name, probed with getattr, is gone
    seconds = backend.warmup((np.float32,))
    assert isinstance(seconds, float) and seconds >= 0


def test_uint8_input_is_scaled_like_the_scaled_floats(backend):
    """``predict(params, uint8)`` once gave wrong answers silently; now it scales them."""
    params = init_params(3)
    rows = 3 if backend.name == "naive" else 300
    pixels = SYNTHETIC.test_images[:rows]
    X = scale_pixels(pixels, np.float32)
    assert np.array_equal(backend.forward(params, pixels), backend.forward(params, X))
    assert np.array_equal(backend.predict_proba(params, pixels, chunk=2), backend.predict_proba(params, X, chunk=2))
    assert np.array_equal(backend.predict(params, pixels), backend.predict(params, X))
    loss_u8, grads_u8 = backend.loss_and_grads(params, pixels, SYNTHETIC.test_labels[:rows])
    loss, grads = backend.loss_and_grads(params, X, SYNTHETIC.test_labels[:rows])
    assert loss_u8 == loss and all(np.array_equal(a, b) for a, b in zip(grads_u8, grads))
    # and not by accident: the raw values 0..255 as floats give other probabilities
    assert not np.allclose(backend.forward(params, pixels.astype(np.float32)), backend.forward(params, X))


def test_predict_is_the_argmax_of_predict_proba_in_chunks(backend):
    params = init_params(1)
    X = scale_pixels(SYNTHETIC.test_images[:7 if backend.name == "naive" else 500])
    proba = backend.predict_proba(params, X, chunk=3)
    assert proba.shape == (len(X), 10) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(backend.predict(params, X, chunk=4), np.argmax(proba, axis=1))


class SleepyWarmup(NumpyBackend):
    """The NumPy backend with a warm-up that takes (sleeps) a known time."""

    name = "sleepy"
    SLEEP = 1.0

    def warmup(self, dtypes=(np.float32,)):
        time.sleep(self.SLEEP)
        return self.SLEEP


def test_warmup_is_not_on_the_training_clock():
    result = digitbench.train(SleepyWarmup(), tiny(), epochs=1)
    assert result.warmup_seconds == SleepyWarmup.SLEEP
    # a 10-step epoch of the NumPy backend takes milliseconds; the sleep would show
    assert result.train_seconds + result.eval_seconds < SleepyWarmup.SLEEP / 2


class TwoStepsAtATime(NumpyBackend):
    name = "two-steps"
    steps_per_call = 2

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0):
        assert len(lrs) <= self.steps_per_call
        self.calls = getattr(self, "calls", 0) + 1
        return super().train_batches(params, velocity, images, labels, order, batch_size, lrs, momentum)


def test_the_trainer_cuts_chunks_to_steps_per_call():
    backend = TwoStepsAtATime()
    result = digitbench.train(backend, tiny(), epochs=1, batch_size=64)
    reference = digitbench.train(get_backend("numpy"), tiny(), epochs=1, batch_size=64)
    # 10 steps an epoch: quarters end at 3, 5, 8, 10; at most 2 steps a call
    assert chunk_bounds(10, {3, 5, 8}, 2) == [(0, 2), (2, 3), (3, 5), (5, 7), (7, 8), (8, 10)]
    assert backend.calls == 6
    assert all(np.array_equal(a, b) for a, b in zip(result.params, reference.params))


def test_chunk_bounds_cover_every_step_once():
    for steps, cuts, per_call in [(10, [3, 5, 8], None), (938, [235, 469, 704], 1), (7, [2, 9], 4), (1, [], None)]:
        pairs = chunk_bounds(steps, cuts, per_call)
        assert [first for first, _ in pairs] == [0] + [last for _, last in pairs[:-1]] and pairs[-1][1] == steps
        assert all(0 < last - first <= (per_call or steps) for first, last in pairs)
        assert {c for c in cuts if c < steps} <= {last for _, last in pairs}


def test_learning_rates_per_chunk_equal_the_whole_runs():
    for schedule in ("constant", "inverse-time", "linear"):
        whole = learning_rates(schedule, 0.1, 0.05, epochs=3, steps_per_epoch=7)
        recipe = Recipe(epochs=3, lr=0.1, decay=0.05, schedule=schedule)
        parts = [recipe.learning_rates(7, epoch, first, last) for epoch in (1, 2, 3)
                 for first, last in chunk_bounds(7, [2, 4], 3)]
        assert np.array_equal(np.concatenate(parts), whole)


def test_a_long_run_does_not_allocate_every_learning_rate():
    recipe = Recipe(epochs=MAX_EPOCHS, batch_size=1)
    assert recipe.learning_rates(60_000, MAX_EPOCHS, 59_990, 60_000).shape == (10,)


def test_divergence_on_the_last_step_is_caught():
    """One step an epoch, one epoch: the only loss is finite, the weights it leaves are not usable."""
    data = tiny(640)
    with pytest.raises(TrainingDiverged, match="outputs are not finite in epoch 1 .step 1 of 1."):
        digitbench.train("numpy", data, epochs=1, batch_size=640, lr=1e30, momentum=0.0, schedule="constant")


@pytest.mark.parametrize("settings, words", [
    (dict(seed=-1), "--seed must be a whole number from 0"),
    (dict(epochs=MAX_EPOCHS + 1), "--epochs must be a whole number from 1 to"),
    (dict(lr=float("nan")), "--lr must be a positive number"),
    (dict(momentum=1.0), r"--momentum must be in \[0, 1\)"),
    (dict(dtype="float16"), "--dtype must be one of float32, float64"),
    (dict(batch_size=641), "--batch-size 641 is more than the 640 training images"),
])
def test_bad_settings_are_refused_before_any_step(settings, words):
    with pytest.raises(UsageError, match=words):
        digitbench.train("numpy", tiny(640), **settings)


def test_the_recipe_is_frozen_and_defaults_to_the_seed_recipe():
    assert Recipe() == Recipe.named("seed")  # the class defaults and the named table agree
    with pytest.raises(AttributeError):
        Recipe().lr = 1.0


def test_one_call_api_takes_a_name_or_an_object():
    by_name = digitbench.train("numpy", tiny(), epochs=1, seed=2)
    by_object = digitbench.train(get_backend("numpy"), tiny(), recipe=Recipe(epochs=1, seed=2))
    assert all(np.array_equal(a, b) for a, b in zip(by_name.params, by_object.params))
    assert by_name.test_accuracy == by_object.test_accuracy and by_name.backend == "numpy"
