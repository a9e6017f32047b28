"""``digitbench predict`` and the loaded model's Python API, on made-up models.

The models here need no data: :func:`confident_model` answers one class with
probability ~1 whatever the image (its last layer is all bias), a freshly initialised
model is unsure about everything, and :func:`overflowing_model` has finite weights
whose outputs are NaN. (Predictions of real digits by a trained model are checked in
test_cli_errors.py.)
"""

import json

import numpy as np
import pytest
from PIL import Image

import digitbench
from digitbench import cli, init_params, save_model
from digitbench.errors import ImageError
from digitbench.params import Params


def confident_model(tmp_path, label=7, dataset="mnist"):
    """A model whose answer is ``label`` with probability ~1 (b3 = 20 at ``label``, 0 elsewhere)."""
    p = init_params(0)
    b3 = np.zeros(10, np.float32)
    b3[label] = 20.0  # p[label] = e^20 / (e^20 + 9 e^(z3 others)) ~ 1 - 1e-8 when W3 = 0
    params = Params(p.W1, p.b1, p.W2, p.b2, np.zeros_like(p.W3), b3)
    return save_model(tmp_path / f"{dataset}-{label}.npz", params, dataset=dataset)


def overflowing_model(tmp_path):
    """Finite weights of 3e38 whose first layer overflows to inf, so the outputs are NaN."""
    p = init_params(0)
    params = Params(np.full_like(p.W1, 3e38), p.b1, np.full_like(p.W2, 3e38), p.b2, p.W3, p.b3)
    return save_model(tmp_path / "overflow.npz", params)


def digit_png(tmp_path, name="d.png"):
    x = np.zeros((28, 28), np.uint8)
    x[6:22, 12:16] = 255  # a bar: a "1", roughly
    Image.fromarray(x).save(tmp_path / name)
    return tmp_path / name


def test_good_images_answered_and_bad_ones_one_line_each(tmp_path, capsys):
    model = confident_model(tmp_path)
    good = [digit_png(tmp_path, "a.png"), digit_png(tmp_path, "b.png")]
    (tmp_path / "bad.png").write_text("not an image")
    code = cli.main(["predict", "--model", str(model), "--backend", "numpy", str(good[0]), str(tmp_path / "bad.png"),
                     str(tmp_path / "none.png"), str(good[1]), "--json"])
    out, err = capsys.readouterr()
    assert code == 1, "a bad image makes the exit status non-zero, at the end"
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == [str(good[0]), str(good[1])]
    assert lines[0].startswith(f"{good[0]}: 7 (100.0%)   7: 100.0%")
    assert err.splitlines() == [f"digitbench predict: error: {tmp_path / 'bad.png'}: not an image Pillow can read "
                                "(PNG, JPEG, ...)", f"digitbench predict: error: {tmp_path / 'none.png'}: no such file"]
    record = json.loads(lines[-1])
    assert [p["digit"] for p in record["predictions"]] == [7, 7]
    assert [e["image"] for e in record["errors"]] == [str(tmp_path / "bad.png"), str(tmp_path / "none.png")]


def test_fashion_mnist_classes_are_named(tmp_path, capsys):
    model = confident_model(tmp_path, label=7, dataset="fashion-mnist")
    assert cli.main(["predict", "--model", str(model), "--backend", "numpy", str(digit_png(tmp_path))]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'd.png'}: 7 sneaker (100.0%)")


def test_unsure_below_one_half(tmp_path, capsys):
    """A fresh network spreads its probability (~0.1 each): every answer is unsure."""
    model = save_model(tmp_path / "fresh.npz", init_params(0))
    assert cli.main(["predict", "--model", str(model), "--backend", "numpy", "--json", str(digit_png(tmp_path))]) == 0
    out = capsys.readouterr().out.splitlines()
    record = json.loads(out[-1])["predictions"][0]
    top = max(record["probabilities"])
    assert top < 0.5 and record["unsure"]
    assert f"({100 * top:.1f}%, unsure)" in out[0]


def test_non_finite_outputs_refused(tmp_path, capsys):
    model = overflowing_model(tmp_path)
    assert cli.main(["predict", "--model", str(model), "--backend", "numpy", str(digit_png(tmp_path))]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "not finite" in err


# --------------------------------------------------------------------------- Python API


def test_load_model_predicts_files_pil_images_and_arrays(tmp_path):
    path = confident_model(tmp_path, label=3)
    model = digitbench.load_model(path)
    params, meta = model  # still unpacks as (params, meta)
    assert isinstance(params, Params) and meta["dataset"] == "mnist"
    png = digit_png(tmp_path)
    pil = Image.open(png)
    array = np.asarray(pil)
    assert model.predict([str(png), png, pil, array, array.reshape(784), array / 255.0]).tolist() == [3] * 6
    proba = model.predict_proba(np.stack([array.reshape(784)] * 4), backend="naive")
    assert proba.shape == (4, 10) and np.allclose(proba.sum(axis=1), 1) and proba[:, 3].min() > 0.99
    assert model.class_names([3]) == ["3"]


def test_model_api_frames_pictures_like_files(tmp_path):
    """A larger array is a picture, framed as a file would be: the same pixels either way."""
    x = np.full((60, 40), 255, np.uint8)
    x[10:50, 18:22] = 0  # black bar on white paper
    Image.fromarray(x).save(tmp_path / "bar.png")
    model = digitbench.load_model(save_model(tmp_path / "m.npz", init_params(1)))
    np.testing.assert_array_equal(model.predict_proba([x]), model.predict_proba([tmp_path / "bar.png"]))


@pytest.mark.parametrize("bad, words", [
    (np.zeros((28, 28, 3, 2)), "not a grayscale picture"),
    (np.full((28, 28), 2.0), "float pixels must be in [0, 1]"),
    (np.full((28, 28), 300), "integer pixels must be in 0..255"),
    ("missing.png", "missing.png: no such file"),
])
def test_model_api_bad_images(tmp_path, monkeypatch, bad, words):
    monkeypatch.chdir(tmp_path)
    model = digitbench.load_model(save_model(tmp_path / "m.npz", init_params(0)))
    with pytest.raises(ImageError, match=None) as info:
        model.predict([digit_png(tmp_path), bad])
    assert words in str(info.value)
