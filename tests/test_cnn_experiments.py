"""The CNN experiments: ``cnn-filters`` and ``shifted-digits`` compute their records on a
few hundred real images (one epoch, NumPy backend, float32), and the shift they score on
moves the pixels it says it moves."""

from types import SimpleNamespace

import numpy as np
import pytest

from digitbench import get_backend
from digitbench.datasets import MnistData
from digitbench.evaluate import evaluate
from digitbench.experiments import cnn_filters, shifted_digits
from digitbench.experiments.shifted_digits import DIRECTIONS, MAX_SHIFT, shift_images, shifted_accuracies
from digitbench.train import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small(mnist_data):
    """256 training and 100 test images of MNIST: enough for one epoch in seconds."""
    d = mnist_data
    return MnistData(d.train_images[:256], d.train_labels[:256], d.test_images[:100], d.test_labels[:100])


@pytest.fixture(scope="module")
def shift_results(small):
    return shifted_digits.compute(args(), small, get_backend("numpy"))


@pytest.fixture(scope="module")
def filters_results(small):
    return cnn_filters.compute(args(), small, get_backend("numpy"))


def args(**overrides):
    return SimpleNamespace(**{"seed": 0, "epochs": 1, "momentum": None, **overrides})


def test_momentum_overrides_the_recipes_only_when_given():
    from digitbench.experiments.common import recipe_overrides

    assert recipe_overrides(args()) == {} and recipe_overrides(args(momentum=0.5)) == {"momentum": 0.5}


def test_a_one_pixel_shift_moves_a_known_pixel_and_fills_zeros():
    images = np.zeros((2, 784), dtype=np.uint8)
    images[0, 5 * 28 + 7] = 200  # row 5, column 7
    images[1] = np.arange(784) % 251 + 1  # no zero anywhere
    right = shift_images(images, 0, 1).reshape(2, 28, 28)
    assert right[0, 5, 8] == 200 and right[0].sum() == 200
    down = shift_images(images, 1, 0).reshape(2, 28, 28)
    assert down[0, 6, 7] == 200 and down[0].sum() == 200
    up_left = shift_images(images, -1, -1).reshape(2, 28, 28)
    assert up_left[0, 4, 6] == 200
    full = images[1].reshape(28, 28)
    np.testing.assert_array_equal(right[1, :, 1:], full[:, :-1])
    assert (right[1, :, 0] == 0).all() and (down[1, 0] == 0).all()  # the column/row moved in is zero
    assert (up_left[1, -1] == 0).all() and (up_left[1, :, -1] == 0).all()
    np.testing.assert_array_equal(shift_images(images, 0, 0), images)
    assert not shift_images(images, 0, 28).any()  # moved out of the frame entirely
    assert shift_images(images, 2, 3).dtype == np.uint8


class SpyBackend:
    """A backend that keeps every batch its forward pass receives."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, []

    def forward(self, params, X, threads=1):
        self.seen.append(np.array(X))
        return self.inner.forward(params, X, threads=threads)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_shifted_accuracy_is_scored_on_the_shifted_images(small):
    params = train("numpy", small, recipe="fast", progress=False).params
    spy = SpyBackend(get_backend("numpy"))
    accuracy = shifted_accuracies(spy, params, small.test_images, small.test_labels, max_shift=2)
    assert set(accuracy) == set(DIRECTIONS) and all(len(a) == 3 for a in accuracy.values())
    for direction, (dy, dx) in DIRECTIONS.items():
        moved = shift_images(small.test_images, 2 * dy, 2 * dx)
        assert accuracy[direction][2] == evaluate(get_backend("numpy"), params, moved, small.test_labels)[
            "test_accuracy"]
    seen = np.concatenate(spy.seen)
    expected = np.concatenate([small.test_images] + [shift_images(small.test_images, k * dy, k * dx)
                                                     for dy, dx in DIRECTIONS.values() for k in (1, 2)])
    np.testing.assert_allclose(seen, expected / 255.0, rtol=1e-6)  # the forward saw the moved pixels
    assert accuracy["right"][0] == evaluate(get_backend("numpy"), params, small.test_images, small.test_labels)[
        "test_accuracy"]


def test_shifted_digits_record(shift_results):
    results = shift_results
    runs = {r["network"]: r for r in results.record["runs"]}
    assert set(runs) == {"mlp", "cnn"}
    assert runs["mlp"]["parameters"] == 109_386 and runs["cnn"]["parameters"] == 215_370
    assert runs["mlp"]["recipe"] == "fast" and runs["cnn"]["recipe"] == "cnn" and runs["cnn"]["epochs"] == 1
    assert results.record["shifts"] == list(range(MAX_SHIFT + 1))
    for r in runs.values():
        assert r["train_seconds"] > 0
        assert set(r["accuracy"]) == set(DIRECTIONS)
        assert all(len(a) == MAX_SHIFT + 1 and all(0 <= x <= 1 for x in a) for a in r["accuracy"].values())
        assert r["accuracy"]["right"][0] == pytest.approx(r["test_accuracy"])  # unmoved: train's own score
        assert r["mean_accuracy"] == pytest.approx(np.mean(list(r["accuracy"].values()), axis=0))
    assert "test accuracy by shift" in "\n".join(results.lines)
    assert set(results.plot) >= {"runs", "shifts"}


def test_cnn_filters_record(filters_results, small):
    results = filters_results
    r = results.record
    assert r["network"] == "cnn" and r["epochs"] == 1 and r["parameters"] == 215_370
    assert 0 <= r["test_accuracy"] <= 1 and r["train_seconds"] > 0
    assert np.shape(r["filters"]) == (16, 5, 5) and len(r["relu_max"]) == 16
    assert r["digit_label"] == int(small.test_labels[cnn_filters.DIGIT])
    p = results.plot
    assert p["relu_maps"].shape == (16, 28, 28) and p["pooled_maps"].shape == (16, 14, 14)
    assert (p["relu_maps"] >= 0).all()
    # pooling keeps each 2 x 2 window's largest value
    np.testing.assert_array_equal(p["pooled_maps"], p["relu_maps"].reshape(16, 14, 2, 14, 2).max(axis=(2, 4)))
    assert not np.array_equal(p["filters"], p["initial"])  # training moved them


def test_figures_are_drawn_from_the_results(shift_results, filters_results, tmp_path):
    from digitbench.cnn_plots import plot_experiment_cnn_filters, plot_experiment_shifted_digits
    from digitbench.figures import save_figure

    for draw, results in ((plot_experiment_shifted_digits, shift_results), (plot_experiment_cnn_filters,
                                                                            filters_results)):
        path = save_figure(draw(results), tmp_path / "figure.png")
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_command_prints_table_and_writes_figure(data_dir, tmp_path, capsys):
    import json

    from digitbench import cli

    code = cli.main(["experiment", "cnn-filters", "--backend", "numpy", "--data-dir", str(data_dir), "--out-dir",
                     str(tmp_path), "--subset", "128", "--test-subset", "100", "--epochs", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and "215,370" in out
    record = json.loads(out.strip().splitlines()[-1])
    assert record["experiment"] == "cnn-filters" and record["epochs"] == 1
    assert (tmp_path / "experiment-cnn-filters.png").read_bytes()[:8] == PNG_SIGNATURE
