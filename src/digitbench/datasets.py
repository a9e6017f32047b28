"""Data sets as arrays: where a data set's folder is, and its four arrays loaded.

The layer above the IDX reader (:mod:`digitbench.data`) and the downloader
(:mod:`digitbench.download`), which do not know each other: :func:`load_mnist` finds the
folder (``data_dir``, else $DIGITBENCH_DATA, else the per-user cache), has the
downloader fill the cache when files are missing, and reads the four files with their
checksums verified. :func:`split_validation` holds out the last training images as a
validation set. :func:`synthetic_data` makes arrays of the same shapes without any
file, for timing.
"""

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .data import CHECKSUMS, DATASETS, SPLITS, default_cache_dir, find_file, missing_files, read_split
from .download import DATA_ENV, download_dataset
from .errors import DataError, ForeignFileError, UsageError


class MnistData(NamedTuple):
    """The four arrays of a data set; unpacks as ``Xtr, ytr, Xte, yte``."""

    train_images: np.ndarray  # (60000, 784) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 784) uint8
    test_labels: np.ndarray  # (10000,) uint8


def resolve_data_dir(data_dir=None, dataset="mnist"):
    """Where the files live: ``data_dir``, else $DIGITBENCH_DATA, else the cache.

    The cache keeps one folder per data set (``<cache>/mnist``, ...); an explicit
    folder holds the four files of the chosen data set directly.
    """
    if dataset not in CHECKSUMS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return default_cache_dir() / dataset


def is_default_cache(data_dir=None):
    """Whether the data come from digitbench's own cache (no ``data_dir``, no $DIGITBENCH_DATA).

    Only there does digitbench download by itself and replace a file that went bad.
    """
    return data_dir is None and not os.environ.get(DATA_ENV)


def folder_label(data_dir, folder):
    """How messages name the folder: ``DIGITBENCH_DATA=/x`` when the variable chose it."""
    return f"{DATA_ENV}={folder}" if data_dir is None and os.environ.get(DATA_ENV) else str(folder)


def load_mnist(data_dir=None, dataset="mnist", download=True, progress=True):
    """Load the train and test split of MNIST (or Fashion-MNIST), checksums verified.

    Parameters
    ----------
    data_dir : str or Path, optional
        Folder holding the four IDX files (``.gz`` or not). Default: $DIGITBENCH_DATA,
        else the per-user cache folder.
    dataset : {"mnist", "fashion-mnist"}
    download : bool
        When the folder is the per-user cache (no ``data_dir``, no $DIGITBENCH_DATA),
        fetch missing files from the public mirrors (see :mod:`digitbench.download`),
        and fetch again a cached file that fails its checksum. A folder the user
        named is never written to: missing or corrupt files there are an error.

    Returns
    -------
    MnistData(train_images (60000, 784) uint8, train_labels (60000,) uint8,
              test_images (10000, 784) uint8, test_labels (10000,) uint8)
    """
    folder = resolve_data_dir(data_dir, dataset)
    fetch = download and is_default_cache(data_dir)
    if fetch and missing_files(folder):
        download_dataset(folder, dataset, progress=progress, replace_bad=True)
    label = folder_label(data_dir, folder)
    try:
        return _read_folder(folder, dataset, label)
    except ForeignFileError:
        raise  # another data set's valid file: not to be replaced
    except DataError:
        if not fetch:
            raise
    # A cached file went bad after it was downloaded: check all four, fetch the bad ones.
    download_dataset(folder, dataset, progress=progress, replace_bad=True)
    return _read_folder(folder, dataset, label)


def _read_folder(folder, dataset, label):
    """The four arrays from ``folder``, checksums verified; DataError if any is missing.

    ``label`` names the folder in the messages (see :func:`folder_label`).
    """
    dataset_option = "" if dataset == "mnist" else f" --dataset {dataset}"
    if not Path(folder).is_dir():
        raise DataError(f"{label}: no such data folder "
                        f"(run `digitbench download --data-dir {folder}{dataset_option}` to create and fill it)")
    missing = missing_files(folder)
    if missing:
        raise DataError(f"{label}: missing {', '.join(missing)} "
                        f"(run `digitbench download --data-dir {folder}{dataset_option}` to fetch them)")
    sums = CHECKSUMS[dataset]
    arrays = []
    for images_name, labels_name in SPLITS.values():
        arrays += read_split(
            find_file(folder, images_name), find_file(folder, labels_name), sums[images_name], sums[labels_name]
        )
    return MnistData(*arrays)


def split_validation(data, n):
    """Hold out the last ``n`` training images as a validation set.

    The test set stays as it is, to be reported once; choices (the best epoch, when to
    stop) are made on the validation set. MNIST's training images are not ordered by
    class, so the last 10,000 hold every digit.

    Parameters
    ----------
    data : MnistData (or its four arrays), training images of shape (N, 784)
    n : int, 0 < n < N, the images to hold out

    Returns
    -------
    (MnistData with the first N - n training images and the same test set,
     (images of shape (n, 784), labels of shape (n,))): the training data and the validation set

    Raises
    ------
    UsageError when ``n`` leaves no training image or is not positive.
    """
    train_images, train_labels, test_images, test_labels = data
    if not 0 < n < len(train_images):
        raise UsageError(f"--validation {n} must be between 1 and {len(train_images) - 1}, "
                         f"fewer than the {len(train_images)} training images")
    keep = len(train_images) - n
    return (MnistData(train_images[:keep], train_labels[:keep], test_images, test_labels),
            (train_images[keep:], train_labels[keep:]))


def synthetic_data(seed=1234, n_train=60_000, n_test=10_000):
    """Seeded random uint8 pixels (~81% zeros, like MNIST) and labels, MNIST's shapes
    (or ``n_train`` and ``n_test`` images, for tests)."""
    rng = np.random.default_rng(seed)

    def images(n):
        pixels = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
        pixels[rng.random((n, 784)) < 0.81] = 0
        return pixels

    return MnistData(images(n_train), rng.integers(0, 10, n_train).astype(np.uint8),
                     images(n_test), rng.integers(0, 10, n_test).astype(np.uint8))
