"""Pictures of a trained model: `digitbench plot`, `digitbench train --plot`, and their helpers."""

import json

import numpy as np
import pytest

from digitbench import cli, get_backend, init_params, save_model
from digitbench.datasets import MnistData
from digitbench.plots import FILES, most_confident_mistakes, weight_mosaic
from digitbench.train import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, max_bytes=150_000):
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) < max_bytes, f"{path} is {len(data)} bytes: too large to commit"
    with Image.open(path) as image:
        image.verify()


@pytest.fixture(scope="module")
def tiny_model(mnist_data, tmp_path_factory):
    """One epoch on 2000 training images: a model that is right often, and wrong often enough."""
    data = MnistData(mnist_data.train_images[:2000], mnist_data.train_labels[:2000],
                     mnist_data.test_images[:1000], mnist_data.test_labels[:1000])
    result = train(get_backend("numpy"), data, epochs=2, seed=3)
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    save_model(path, result.params, backend="numpy", seed=3, dataset="mnist", recipe="seed",
               history=result.history, config=result.config)
    return path


def test_plot_writes_every_picture(tiny_model, data_dir, tmp_path, capsys):
    code = cli.main(["plot", "--model", str(tiny_model), "--backend", "numpy", "--data-dir", str(data_dir),
                     "--out-dir", str(tmp_path), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out.strip().splitlines()[-1])["figures"]
    assert set(figures) == set(FILES)
    for name in FILES.values():
        check_png(tmp_path / name)


def test_plot_without_history_skips_the_curves(mnist_data, data_dir, tmp_path, capsys):
    model = tmp_path / "bare.npz"
    save_model(model, init_params(0), dataset="mnist")  # no history, no seed
    assert cli.main(["plot", "--model", str(model), "--backend", "numpy", "--data-dir", str(data_dir),
                     "--out-dir", str(tmp_path)]) == 0
    assert "no training history" in capsys.readouterr().out
    assert not (tmp_path / FILES["curves"]).exists() and not (tmp_path / FILES["learned"]).exists()
    check_png(tmp_path / FILES["weights"])


def test_train_plot_option(data_dir, tmp_path, capsys):
    curves = tmp_path / "curves.png"
    # Stopping at 50% test accuracy ends training after the first quarter epoch.
    code = cli.main(["train", "--backend", "numpy", "--data-dir", str(data_dir), "--epochs", "1", "--out", "",
                     "--plot", str(curves), "--quiet", "--target-accuracy", "0.5", "--stop-at-target"])
    assert code == 0
    assert f"wrote {curves}" in capsys.readouterr().out
    check_png(curves)


def test_train_plot_into_missing_folder_fails_before_training(tmp_path, capsys):
    assert cli.main(["train", "--plot", str(tmp_path / "missing" / "c.png"), "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--plot" in err and "does not exist" in err and "no such data folder" not in err  # before the data


def test_plot_bad_model_is_one_line(tmp_path, capsys):
    assert cli.main(["plot", "--model", str(tmp_path / "none.npz"), "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1


def test_most_confident_mistakes():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([1, 1, 1, 0])  # rows 0, 2, 3 are wrong, with confidence 0.9, 0.6, 0.95
    assert most_confident_mistakes(p, labels, 2).tolist() == [3, 0]
    assert most_confident_mistakes(p, labels, 10).tolist() == [3, 0, 2]


def test_weight_mosaic_places_each_column():
    W = np.arange(784 * 3, dtype=np.float64).reshape(784, 3) + 1
    mosaic = weight_mosaic(W, cols=2, gap=1)
    assert mosaic.shape == (2 * 29 - 1, 2 * 29 - 1)
    np.testing.assert_allclose(mosaic[:28, 29:], W[:, 1].reshape(28, 28) / W[:, 1].max())
    assert np.isnan(mosaic[28]).all() and np.isnan(mosaic[29:, 29:]).all()  # gap row, missing 4th tile
