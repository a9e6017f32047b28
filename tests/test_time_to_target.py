"""Time to target: the fixed-length recipe (evaluated once), the secondary first-check
figure (MLPerf's summary, checks off the clock), the same recipe for all, and a recipe
search that never reads the test set."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from digitbench import bench, get_backend, time_to_target
from digitbench.datasets import MnistData
from digitbench.time_to_target import chunks, closed_recipe, run_fixed, run_to_target, summarize, summarize_fixed
from digitbench.recipe import RECIPES, learning_rates


def runs(*seconds):
    return [{"seed": s, "seconds": t} for s, t in enumerate(seconds)]


def test_mlperf_drops_the_fastest_and_slowest_of_five_seeds():
    out = summarize(runs(5.0, 1.0, 3.0, 2.0, 4.0))
    assert out["seconds"] == pytest.approx(3.0)  # mean of 2, 3, 4
    assert out["spread"] == (2.0, 4.0)
    assert sorted(out["kept"]) == [2, 3, 4] and out["reached"] == 5 and "middle three of five" in out["rule"]


def test_a_seed_that_never_reaches_counts_as_the_slowest_two_mean_no_result():
    one = summarize(runs(None, 1.0, 2.0, 3.0, 4.0))
    assert one["seconds"] == pytest.approx(3.0) and one["reached"] == 4  # 2, 3, 4 kept; the failure dropped
    two = summarize(runs(None, 1.0, None, 3.0, 4.0))
    assert two["seconds"] is None and two["spread"] is None and two["reached"] == 3


def test_checks_are_evenly_spaced_twenty_times_an_epoch():
    pieces = chunks(938)
    assert len(pieces) == 20 and pieces[0][0] == 0 and pieces[-1][1] == 938
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert {last - first for first, last in pieces} <= {46, 47, 48}


def test_the_closed_recipe_is_trains_fast_one_and_refuses_what_peers_lack(monkeypatch):
    recipe = closed_recipe()
    fast = RECIPES["fast"]
    assert {k: recipe[k] for k in ("epochs", "batch_size", "lr", "schedule")} == \
        {k: fast[k] for k in ("epochs", "batch_size", "lr", "schedule")}
    # fields that change nothing (a name, off switches, float32) still make a closed recipe
    monkeypatch.setitem(RECIPES, "fast", {**fast, "name": "fast", "nesterov": False, "dtype": "float32"})
    assert closed_recipe()["lr"] == fast["lr"]
    monkeypatch.setitem(RECIPES, "fast", {**fast, "nesterov": True})
    with pytest.raises(ValueError, match="nesterov"):
        closed_recipe()


class Clock:
    """A fake ``time`` module: ``perf_counter`` reads ``now``, which the contender advances."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class Scripted:
    """A contender whose accuracy is 1 after ``reach[seed]`` steps and 0 before; each
    step advances ``clock`` by ``step_seconds``, each prediction by ``eval_seconds``."""

    kind, name, slow = "peer", "scripted", False

    def __init__(self, reach, clock=None, step_seconds=0.0, eval_seconds=0.0):
        self.reach, self.clock = reach, clock or Clock()
        self.step_seconds, self.eval_seconds = step_seconds, eval_seconds
        self.calls, self.batch_size = [], 8

    def prepare(self, data, batch_size, seed=0):
        self.batch_size, self.test, self.labels = batch_size, data.test_images / 255, data.test_labels

    def reset(self, seed, mean=None):
        self.seed, self.steps = seed, 0
        self.calls.append(("reset", seed))
        self.means = getattr(self, "means", []) + [mean]

    def train(self, order, lrs=None):
        assert len(lrs) == math.ceil(len(order) / self.batch_size)
        self.calls.append(("train", len(order), tuple(np.round(lrs, 12)), tuple(order[:3])))
        self.steps += len(lrs)
        self.clock.now += self.step_seconds * len(lrs)

    def predict(self, X):
        self.clock.now += self.eval_seconds
        right = self.steps >= self.reach.get(self.seed, math.inf)
        return np.where(right, self.labels[:len(X)], (self.labels[:len(X)] + 1) % 10)


def data(n_train=100, n_test=10):
    rng = np.random.default_rng(0)
    return MnistData(rng.integers(0, 256, (n_train, 784), dtype=np.uint8), rng.integers(0, 10, n_train),
                     rng.integers(0, 256, (n_test, 784), dtype=np.uint8), rng.integers(0, 10, n_test))


RECIPE = dict(name="t", epochs=2, batch_size=8, lr=0.1, momentum=0.9, schedule="linear", decay=0.0)


def test_the_clock_counts_training_only_and_stops_at_the_first_check_at_target(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time_to_target, "time", clock)
    c = Scripted({0: 8}, clock, step_seconds=0.002, eval_seconds=0.01)
    c.prepare(data(), 8)
    out = run_to_target(c, data(), RECIPE, seed=0, target=0.97, checks=4)
    # 100 samples, batch 8: 13 steps an epoch, checks after steps 4, 7, 10, 13; 8 steps -> after step 10
    assert out["checks"] == 3 and out["epochs"] == pytest.approx(10 / 13)
    assert out["seconds"] == pytest.approx(10 * 0.002)  # the three evaluations of 10 ms are not in it
    assert out["eval_seconds"] == pytest.approx(3 * 0.01)
    timed = [call for call in c.calls if call[0] == "train"][-3:]
    lrs = learning_rates("linear", 0.1, 0.0, 2, 13)
    assert [call[2] for call in timed] == [tuple(np.round(lrs[a:b], 12)) for a, b in ((0, 4), (4, 7), (7, 10))]
    # the batches are train's: the permutation of seed 0, drawn as digitbench train draws it
    order = np.random.default_rng(0).permutation(100)
    assert timed[0][3] == tuple(order[:3]) and timed[1][3] == tuple(order[32:35])


def test_every_chunk_shape_is_run_before_the_clock_then_the_weights_reset():
    c = Scripted({})
    c.prepare(data(), 8)
    out = run_to_target(c, data(), RECIPE, seed=1, checks=4)
    assert out["seconds"] is None and out["checks"] == 8  # two epochs, never reached
    first_reset = c.calls.index(("reset", 1))
    second_reset = c.calls.index(("reset", 1), first_reset + 1)
    warmed = {call[1] for call in c.calls[first_reset + 1:second_reset]}
    timed = {call[1] for call in c.calls[second_reset + 1:]}
    # chunks of 4, 3, 3 and 3 steps; the last holds the short batch: 100 - 80 = 20 samples
    assert timed <= warmed == {32, 24, 20}


def test_numpy_backend_reaches_a_target_on_real_digits(mnist_data):
    small = MnistData(mnist_data.train_images[:3000], mnist_data.train_labels[:3000],
                      mnist_data.test_images[:1000], mnist_data.test_labels[:1000])
    c = bench.BackendContender(get_backend("numpy"))
    c.prepare(small, 64)
    result = time_to_target.compare(c, small, closed_recipe() | {"epochs": 1}, seeds=(0, 1, 2), target=0.80,
                                    checks=5, first_check_seeds=(0, 1, 2))
    closed = result["closed"]
    assert closed["seeds"] == 3 and closed["reached"] and 0 < closed["seconds"] < 5
    assert closed["accuracy"] >= 0.80 and closed["accuracy_ci"][0] <= closed["accuracy"] <= closed["accuracy_ci"][1]
    assert result["open"]["seconds"] == closed["seconds"] and "no better one" in result["open"]["recipe"]
    first = result["first_check"]
    assert first["reached"] == 3 and len(first["kept"]) == 1


def test_the_fixed_recipe_trains_to_its_end_and_evaluates_once_off_the_clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time_to_target, "time", clock)
    c = Scripted({0: 8}, clock, step_seconds=0.002, eval_seconds=0.01)
    c.prepare(data(), 8)
    out = run_fixed(c, data(), RECIPE, seed=0)
    # 13 steps an epoch, two epochs, all on the clock whatever the accuracy on the way
    assert out["seconds"] == pytest.approx(26 * 0.002) and out["eval_seconds"] == pytest.approx(0.01)
    assert out["accuracy"] == 1.0 and out["epochs"] == 2
    first_reset = c.calls.index(("reset", 0))
    second_reset = c.calls.index(("reset", 0), first_reset + 1)
    timed = [call for call in c.calls[second_reset + 1:] if call[0] == "train"]
    assert [call[1] for call in timed] == [100, 100]  # one call an epoch, compiled before the clock
    assert c.calls[first_reset + 1][1] == 100 and set(c.calls[first_reset + 1][2]) == {0.0}
    lrs = learning_rates("linear", 0.1, 0.0, 2, 13)
    assert timed[1][2] == tuple(np.round(lrs[13:], 12))


def test_the_fixed_figure_is_a_median_time_and_a_mean_accuracy_with_its_interval():
    runs = [{"seed": s, "seconds": t, "accuracy": a}
            for s, (t, a) in enumerate([(1.0, 0.975), (3.0, 0.968), (2.0, 0.972), (9.0, 0.971)])]
    out = summarize_fixed(runs, target=0.97)
    assert out["seconds"] == 2.5 and out["spread"] == (1.0, 9.0)
    assert out["accuracy"] == pytest.approx(0.9715) and out["at_target"] == 0.75 and out["reached"]
    low, high = out["accuracy_ci"]
    assert 0.968 <= low <= out["accuracy"] <= high <= 0.975
    assert not summarize_fixed(runs, target=0.98)["reached"]


def test_the_validation_split_is_the_last_training_images():
    d = data(n_train=100)
    v = time_to_target.validation_data(d, 30)
    np.testing.assert_array_equal(v.train_images, d.train_images[:70])
    np.testing.assert_array_equal(v.test_images, d.train_images[70:])
    np.testing.assert_array_equal(v.test_labels, d.train_labels[70:])
    with pytest.raises(ValueError):
        time_to_target.validation_data(d, 100)


def tool(name):
    """A script of tools/ as a module."""
    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recipe_search_never_reads_the_test_set():
    """Poisoned test images and labels, or none at all: the same figures and the same choice."""
    search = tool("recipe_search")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 784), dtype=np.uint8)
    labels = (images[:, :392].sum(axis=1) > images[:, 392:].sum(axis=1)).astype(np.int64)  # learnable
    clean = MnistData(images, labels, images[:50], labels[:50])
    poisoned = MnistData(images, labels, np.full((50, 784), 255, np.uint8), np.full(50, -1))
    absent = MnistData(images, labels, np.full((0, 784), np.nan), np.full(0, np.nan))
    grid = search.candidates([1, 5], [1.0], lr=0.05, batch_size=16, center=False)
    outcomes = []
    for d in (clean, poisoned, absent):
        c = bench.BackendContender(get_backend("numpy"))  # prepared by the search, on the validation split
        chosen, summaries = search.search(c, d, grid, seeds=(0, 1), target=0.55, holdout=100, report=lambda s: None)
        outcomes.append((chosen, [s["accuracy"] for s in summaries]))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0]["epochs"] == 5  # one epoch stays under the target: the longer one is chosen


@pytest.mark.parametrize("center", [False, True])
def test_a_centred_recipe_centres_every_reset_on_the_training_mean(center):
    from digitbench.pixels import mean_image

    d, contender = data(), Scripted({0: 3})
    contender.prepare(d, 8)
    time_to_target.run_to_target(contender, d, RECIPE | {"center": center}, 0)
    assert len(contender.means) == 2
    for mean in contender.means:
        if center:
            np.testing.assert_array_equal(mean, mean_image(d.train_images))
        else:
            assert mean is None


def test_each_run_says_the_thread_count_a_timing_contender_ended_on():
    c = Scripted({0: 8})
    c.prepare(data(), 8)
    assert "thread_choice" not in run_to_target(c, data(), RECIPE, seed=0, checks=4)
    c.thread_choice = {"threads": 1, "max_threads": 2, "reason": "1 thread measured faster"}
    out = run_to_target(c, data(), RECIPE, seed=0, checks=4)
    assert out["thread_choice"] == c.thread_choice and out["seconds"] is not None
