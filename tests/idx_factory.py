"""Builders of small synthetic IDX files (raw or gzipped) for the reader's tests.

Nothing here touches the real MNIST files: each test writes the few bytes it needs.
"""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from digitbench.data import IMAGE_MAGIC, LABEL_MAGIC, SPLITS


def idx_bytes(array, type_code=0x08, dims=None, zero=0):
    """The IDX encoding of a uint8 ``array``: header then payload.

    ``dims`` overrides the declared sizes (to make the header lie); ``zero`` and
    ``type_code`` override the leading bytes.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    dims = array.shape if dims is None else tuple(dims)
    header = struct.pack(">HBB", zero, type_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.tobytes()


def images(n=5, seed=0, size=(28, 28)):
    """``n`` random uint8 images of shape (n, *size)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *size), dtype=np.uint8)


def labels(n=5, seed=0):
    """``n`` random digit labels of shape (n,)."""
    return np.random.default_rng(seed).integers(0, 10, size=n, dtype=np.uint8)


def write(path, data, gz=None):
    """Write ``data`` (bytes) to ``path``, gzipped when ``gz`` (default: name ends .gz)."""
    path = Path(path)
    if gz is None:
        gz = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write_dataset(folder, n_train=60, n_test=20, seed=0, gz=True, data=None):
    """Write the four files of a small synthetic data set into ``folder``.

    Returns (checksums by name, {name: raw IDX bytes}) so a test can patch
    ``digitbench.data.CHECKSUMS`` and serve or compare the payloads. ``data`` may be a
    (train_images, train_labels, test_images, test_labels) tuple of uint8 arrays.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = (images(n_train, seed), labels(n_train, seed), images(n_test, seed + 1), labels(n_test, seed + 1))
    train_x, train_y, test_x, test_y = data
    arrays = dict(zip((*SPLITS["train"], *SPLITS["test"]), (
        np.asarray(train_x).reshape(-1, 28, 28), train_y, np.asarray(test_x).reshape(-1, 28, 28), test_y)))
    sums, payloads = {}, {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        payloads[name] = raw
        sums[name] = sha256(raw)
        write(folder / (name + (".gz" if gz else "")), raw, gz=gz)
    return sums, payloads


def magic_of(name):
    return IMAGE_MAGIC if "images" in name else LABEL_MAGIC
