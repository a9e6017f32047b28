import gzip
import shutil
import struct

import numpy as np
import pytest

from digitbench import load_mnist
from digitbench.data import IMAGE_MAGIC, LABEL_MAGIC, read_idx, read_images, read_labels
from digitbench.datasets import resolve_data_dir
from digitbench.pixels import scale_pixels as scale
from digitbench.errors import DataError


def test_real_mnist_shapes_dtypes_and_known_labels(mnist_data):
    Xtr, ytr, Xte, yte = mnist_data
    assert Xtr.shape == (60000, 784) and Xte.shape == (10000, 784)
    assert ytr.shape == (60000,) and yte.shape == (10000,)
    assert Xtr.dtype == np.uint8 and ytr.dtype == np.uint8
    # The first labels of each split are well known.
    assert ytr[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert yte[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    # Every digit occurs; the test set has 980 zeros and 1135 ones.
    assert np.bincount(yte).tolist()[:2] == [980, 1135]
    assert Xtr.max() == 255 and Xtr.min() == 0


def test_gzip_and_raw_files_read_the_same(data_dir, tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    with gzip.open(data_dir / "t10k-labels-idx1-ubyte.gz", "rb") as src, open(raw, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert np.array_equal(read_labels(raw), read_labels(data_dir / "t10k-labels-idx1-ubyte.gz"))


def test_load_from_a_folder_of_decompressed_files(data_dir, tmp_path, mnist_data):
    for f in data_dir.glob("*.gz"):
        with gzip.open(f, "rb") as src, open(tmp_path / f.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    again = load_mnist(tmp_path, download=False)
    assert all(np.array_equal(a, b) for a, b in zip(again, mnist_data))


def _idx(path, magic, dims, payload):
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + bytes(payload))
    return path


def test_small_valid_files(tmp_path):
    payload = (np.arange(2 * 784) % 256).astype(np.uint8)
    images = read_images(_idx(tmp_path / "i", IMAGE_MAGIC, (2, 28, 28), payload.tobytes()))
    assert images.shape == (2, 784) and np.array_equal(images.ravel(), payload)
    labels = read_labels(_idx(tmp_path / "l", LABEL_MAGIC, (3,), [9, 0, 3]))
    assert labels.tolist() == [9, 0, 3]


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "ends early"),
    (lambda p: p.write_bytes(b"\x00\x00\x08\x01\x00\x00"), "ends early"),
    (lambda p: _idx(p, LABEL_MAGIC, (5,), [1, 2, 3]), "5 bytes of data, more than the file can hold \\(3 bytes\\)"),
    (lambda p: _idx(p, LABEL_MAGIC, (2,), [1, 2, 3]), "longer than its header"),
    (lambda p: _idx(p, LABEL_MAGIC, (3,), [1, 12, 3]), "label 12 at index 1"),
    (lambda p: _idx(p, IMAGE_MAGIC, (1, 28, 28), bytes(784)), "expected labels"),
    (lambda p: _idx(p, 0x00000901, (1,), [1]), "type code 0x09"),
    (lambda p: _idx(p, LABEL_MAGIC, (4_000_000_000,), [1]), "more than the file can hold"),
])
def test_malformed_label_files_are_refused_with_a_reason(tmp_path, make, message):
    path = tmp_path / "labels"
    make(path)
    with pytest.raises(DataError, match=message) as err:
        read_labels(path)
    assert str(path) in str(err.value)


def test_images_must_be_28_by_28(tmp_path):
    with pytest.raises(DataError, match="not 28 x 28"):
        read_images(_idx(tmp_path / "i", IMAGE_MAGIC, (1, 27, 29), bytes(27 * 29)))


def test_checksum_mismatch_is_refused(tmp_path):
    path = _idx(tmp_path / "l", LABEL_MAGIC, (1,), [1])
    with pytest.raises(DataError, match="checksum mismatch .* not the original; move it away"):
        read_idx(path, LABEL_MAGIC, checksum="0" * 64)


def test_lookup_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("DIGITBENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir(dataset="fashion-mnist") == tmp_path / "cache" / "digitbench" / "fashion-mnist"
    with pytest.raises(DataError, match="unknown dataset"):
        resolve_data_dir(dataset="cifar")


def test_missing_files_without_download_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_mnist(tmp_path, download=False)


def test_scale_keeps_dtype_and_range():
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    assert scale(x).dtype == np.float32 and scale(x, np.float64).dtype == np.float64
    assert scale(x, np.float64).tolist() == [[0.0, 128 / 255, 1.0]]


FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist (CI installs it)


@pytest.fixture(scope="module")
def fashion_dir():
    import os
    from pathlib import Path

    from digitbench.data import missing_files

    if not Path(FASHION).is_dir() or missing_files(FASHION):
        message = f"Fashion-MNIST not in {FASHION}: apt-get install dataset-fashion-mnist"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI=true: a failure, not a skip)")
        pytest.skip(message)
    return Path(FASHION)


def test_fashion_mnist_from_the_debian_package_loads_and_trains(fashion_dir, tmp_path, capsys):
    import json

    from digitbench.cli import main

    data = load_mnist(fashion_dir, dataset="fashion-mnist", download=False)
    assert [a.shape for a in data] == [(60000, 784), (60000,), (10000, 784), (10000,)]
    assert data.test_labels[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, ...
    # Its files are not MNIST's: under the mnist checksums they are refused.
    with pytest.raises(DataError, match="this is Fashion-MNIST's train-images file, not MNIST's; choose --dataset"):
        load_mnist(fashion_dir, dataset="mnist", download=False)
    out = tmp_path / "fashion.npz"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir), "--backend", "numpy",
                 "--epochs", "1", "--out", str(out), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # One epoch of the seed recipe measures 83.4% on Fashion-MNIST here; 78% is the floor.
    assert summary["dataset"] == "fashion-mnist" and summary["test_accuracy"] > 0.78
