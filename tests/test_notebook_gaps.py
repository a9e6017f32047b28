"""What a notebook user meets first: array shapes, nested lists, the model's repr, and the
command line's answers to a model judged on another data set, a peer library named as
a backend, and an experiment that trains nothing."""

import numpy as np
import pytest

from digitbench import cli
from digitbench.errors import ImageError
from digitbench.model import Model, as_pixels
from digitbench.params import init_params


def test_an_array_that_is_no_mnist_shape_is_refused_in_one_line():
    with pytest.raises(ImageError) as caught:
        as_pixels(np.zeros((5, 100), np.uint8))
    assert "(5, 100)" in str(caught.value) and "\n" not in str(caught.value)


def test_784_wide_rows_are_that_many_images():
    assert as_pixels(np.zeros((5, 784), np.uint8)).shape == (5, 784)


def test_a_nested_list_of_28_by_28_is_one_image():
    digit = np.arange(784).reshape(28, 28) % 256
    pixels = as_pixels(digit.tolist())
    assert pixels.shape == (1, 784) and (pixels[0] == digit.reshape(784)).all()


def test_a_picture_of_another_size_in_a_list_is_still_framed():
    picture = np.zeros((40, 30))
    picture[10:30, 12:18] = 255
    assert as_pixels([picture]).shape == (1, 784)


def test_repr_is_one_short_line():
    model = Model(init_params(0), {"dataset": "fashion-mnist", "test_accuracy": 0.8812})
    text = repr(model)
    assert text == "Model(network=mlp, dtype=float32, dataset=fashion-mnist, test_accuracy=88.12%)"


def test_a_model_judged_on_another_data_set_is_warned_about(tmp_path, capsys, data_dir):
    from digitbench import save_model

    path = save_model(tmp_path / "fashion.npz", init_params(0), dataset="fashion-mnist")
    code = cli.main(["evaluate", "--model", str(path), "--dataset", "mnist", "--data-dir", str(data_dir),
                     "--backend", "numpy"])
    err = capsys.readouterr().err
    assert code == 0 and "was trained on Fashion-MNIST" in err


@pytest.mark.parametrize("name", ["torch", "pytorch", "jax"])
def test_a_peer_named_as_backend_points_to_bench_peers(name, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--backend", name])
    err = capsys.readouterr().err
    assert stop.value.code != 0 and "bench --peers" in err and len(err.strip().splitlines()) == 1


def test_an_experiment_that_trains_nothing_reports_no_test_accuracy(data_dir, tmp_path, capsys):
    code = cli.main(["experiment", "softmax-overflow", "--backend", "numpy", "--data-dir", str(data_dir),
                     "--out-dir", str(tmp_path), "--test-subset", "100"])
    out = capsys.readouterr().out
    assert code == 0 and "test accuracy" not in out.lower()
