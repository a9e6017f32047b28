"""Bad options and bad images: one clear line and a non-zero exit, never a traceback.

Also checks that ``predict`` reads what people actually have: real MNIST digits saved
as PNG in either polarity, enlarged, 16-bit, or drawn on a transparent sheet, and
gives the right digit with a model trained here for one quick epoch.
"""

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from digitbench import get_backend, save_model
from digitbench.cli import main
from digitbench.errors import ImageError
from digitbench.predict import preprocess_image
from digitbench.train import train

# --------------------------------------------------------------------------- options


def _one_line_error(capsys, argv, code=None):
    """Run the CLI; return stderr after checking it is one error line and the exit non-zero."""
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's errors exit from inside parse_args
        status = e.code
    err = capsys.readouterr().err
    assert status not in (0, None) and (code is None or status == code), status
    assert err.count("\n") == 1 and "Traceback" not in err and "error: " in err, err
    return err


@pytest.mark.parametrize("command", [["train"], ["evaluate", "--model", "m.npz"], ["predict", "--model", "m.npz", "x.png"]])
def test_unknown_backend_lists_the_valid_ones(capsys, command):
    from digitbench.backends import BACKENDS

    err = _one_line_error(capsys, [*command, "--backend", "tensorflow"], code=2)
    assert "invalid choice: 'tensorflow'" in err and all(f"'{name}'" in err for name in BACKENDS), err


def test_get_backend_unknown_is_a_valueerror_naming_them():
    with pytest.raises(ValueError, match="unknown backend 'torch'; choose one of: .*numpy"):
        get_backend("torch")


@pytest.mark.parametrize("option, value, words", [
    ("--epochs", "0", "0 must be positive"),
    ("--epochs", "-3", "-3 must be positive"),
    ("--epochs", "2.5", "'2.5' is not a whole number"),
    ("--batch-size", "0", "0 must be positive"),
    ("--batch-size", "-64", "-64 must be positive"),
    ("--lr", "0", "0 must be a positive number"),
    ("--lr", "-0.01", "-0.01 must be a positive number"),
    ("--lr", "nan", "nan must be a positive number"),
    ("--lr", "inf", "inf must be a positive number"),
    ("--lr", "fast", "'fast' is not a number"),
    ("--target-accuracy", "97", "97 must be a fraction in (0, 1]"),
    ("--target-accuracy", "0", "0 must be a positive number"),
    ("--schedule", "exponential", "invalid choice: 'exponential'"),
    ("--dtype", "float16", "invalid choice: 'float16'"),
])
def test_bad_training_options_fail_at_parse_time(capsys, option, value, words):
    err = _one_line_error(capsys, ["train", option, value], code=2)
    assert err.startswith(f"digitbench train: error: argument {option}: ") and words in err, err


@pytest.mark.parametrize("option, value, words", [
    ("--momentum", "1", "--momentum must be in [0, 1), not 1.0"),
    ("--momentum", "-0.5", "--momentum must be in [0, 1), not -0.5"),
    ("--momentum", "nan", "--momentum must be in [0, 1), not nan"),
    ("--decay", "-1", "--decay must be a non-negative number, not -1.0"),
    ("--decay", "inf", "--decay must be a non-negative number, not inf"),
])
def test_bad_training_options_fail_before_loading_data(capsys, tmp_path, option, value, words):
    """Checked before the data: the (missing) data folder is never looked at."""
    err = _one_line_error(capsys, ["train", option, value, "--data-dir", str(tmp_path / "none")], code=1)
    assert err == f"digitbench train: error: {words}\n"


def test_bad_top_and_missing_model(capsys, tmp_path):
    assert "0 must be positive" in _one_line_error(capsys, ["predict", "--model", "m.npz", "--top", "0", "x.png"], 2)
    err = _one_line_error(capsys, ["evaluate", "--model", str(tmp_path / "none.npz")], 1)
    hint = "no such file; train one with `digitbench train` or pass --model"
    assert err == f"digitbench evaluate: error: {tmp_path / 'none.npz'}: {hint}\n"


@pytest.mark.parametrize("command", [["evaluate"], ["plot"], ["predict", "x.png"]])
def test_model_defaults_to_what_train_writes(capsys, tmp_path, monkeypatch, command):
    """--model defaults to model.npz, train's --out default; missing, it says how to get one."""
    monkeypatch.chdir(tmp_path)
    err = _one_line_error(capsys, command, 1)
    assert err == f"digitbench {command[0]}: error: model.npz: no such file; train one with `digitbench train` or pass --model\n"


def test_bad_option_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "digitbench.cli", "train", "--epochs", "0"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "digitbench train: error: argument --epochs: 0 must be positive (see --help)\n"


# --------------------------------------------------------------------------- images


@pytest.fixture(scope="module")
def model(mnist_data, tmp_path_factory):
    """One epoch of the numpy backend on 10,000 training images (about 95% test accuracy)."""
    backend = get_backend("numpy")
    data = (mnist_data[0][:10000], mnist_data[1][:10000], mnist_data[2][:1000], mnist_data[3][:1000])
    result = train(backend, data, epochs=1, batch_size=64, lr=0.05, momentum=0.9, schedule="linear", decay=0.0)
    path = save_model(tmp_path_factory.mktemp("model") / "m.npz", result.params)
    return path, result.params


@pytest.fixture(scope="module")
def digits(mnist_data, model):
    """Ten test digits (one of each class) that the model classifies right from raw pixels."""
    _, params = model
    images, labels = mnist_data[2], mnist_data[3]
    predicted = get_backend("numpy").predict(params, images[:500].astype(np.float32) / 255)
    chosen = [int(np.flatnonzero((labels[:500] == d) & (predicted == d))[0]) for d in range(10)]
    return [(images[i].reshape(28, 28), int(labels[i])) for i in chosen]


def _predict(capsys, model_path, paths):
    """The CLI's predicted digit for each path."""
    assert main(["predict", "--model", str(model_path), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [int(line.split(": ")[1].split()[0]) for line in lines]


def _enlarged_on_paper(x):
    """Black ink on white paper, 4x larger, off-centre in a wider sheet: a scan, roughly."""
    big = Image.fromarray(255 - x).resize((112, 112), Image.BICUBIC)
    sheet = Image.new("L", (200, 150), 255)
    sheet.paste(big, (20, 10))
    return sheet


VARIANTS = {
    "white on black": lambda x: Image.fromarray(x),
    "black on white": lambda x: Image.fromarray(255 - x),
    "enlarged scan": _enlarged_on_paper,
    "16-bit": lambda x: Image.fromarray(x.astype(np.uint16) * 257),
    "RGB": lambda x: Image.fromarray(np.stack([255 - x] * 3, axis=-1)),
    "black ink, transparent sheet": lambda x: Image.fromarray(
        np.dstack([np.zeros((28, 28, 3), np.uint8), x])),
    "white ink, transparent sheet": lambda x: Image.fromarray(
        np.dstack([np.full((28, 28, 3), 255, np.uint8), x])),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_predict_real_digits(capsys, tmp_path, model, digits, variant):
    """All ten digits right: preprocessing gives back MNIST's own framing.

    (For the 28 x 28 variants the preprocessed image equals the original up to
    resampling: 99% of test digits land at the same place, mean |difference| 0.23/255.)
    """
    paths = []
    for k, (x, _) in enumerate(digits):
        image = VARIANTS[variant](x)
        path = tmp_path / f"digit{k}.png"
        image.save(path)
        paths.append(path)
    if variant == "16-bit":
        assert Image.open(paths[0]).mode.startswith("I")
    if "transparent" in variant:
        assert Image.open(paths[0]).mode == "RGBA"
    assert _predict(capsys, model[0], paths) == [label for _, label in digits]


def test_white_on_black_round_trip_is_nearly_exact(digits, tmp_path):
    for x, _ in digits:
        Image.fromarray(x).save(tmp_path / "d.png")
        y = preprocess_image(tmp_path / "d.png").reshape(28, 28).astype(int)
        assert np.abs(y - x).mean() < 2, "preprocessing moved or distorted a real MNIST digit"


def _png_header_only(width, height):
    """A PNG signature and IHDR chunk claiming ``width`` x ``height``, and no pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _truncated_png(tmp_path):
    path = tmp_path / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
    return path.read_bytes()[:2000]


BAD_IMAGES = {
    "text file": (lambda tmp: b"this is not an image\n", "not an image Pillow can read"),
    "empty file": (lambda tmp: b"", "file is empty (0 bytes), not an image"),
    "all blank": (lambda tmp: _png_bytes(np.full((28, 28), 255, np.uint8)), "no digit found"),
    "all black": (lambda tmp: _png_bytes(np.zeros((28, 28), np.uint8)), "no digit found"),
    "fully transparent": (lambda tmp: _png_bytes(np.zeros((28, 28, 4), np.uint8)), "no digit found"),
    "huge claimed size": (lambda tmp: _png_header_only(100_000, 100_000), "image is too large"),
    "over our limit": (lambda tmp: _png_header_only(8000, 6000), "image is 8000 x 6000 pixels, more than the limit"),
    "truncated PNG": (_truncated_png, "cannot decode"),
}


def _png_bytes(array):
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_bad_image_one_line(capsys, tmp_path, model, kind):
    make, words = BAD_IMAGES[kind]
    path = tmp_path / "digit.png"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ImageError, match=None) as info:
        preprocess_image(path)
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value), str(info.value)
    err = _one_line_error(capsys, ["predict", "--model", str(model[0]), str(path)], code=1)
    assert err.startswith(f"digitbench predict: error: {path}: ") and "Warning" not in err


def test_missing_image_and_folder(capsys, tmp_path, model):
    err = _one_line_error(capsys, ["predict", "--model", str(model[0]), str(tmp_path / "none.png")], 1)
    assert err == f"digitbench predict: error: {tmp_path / 'none.png'}: no such file\n"
    err = _one_line_error(capsys, ["predict", "--model", str(model[0]), str(tmp_path)], 1)
    assert err == f"digitbench predict: error: {tmp_path}: is a folder, not an image file\n"
