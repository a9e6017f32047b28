"""Pixels as stored (uint8, 0..255) to the network's input (floats in [0, 1]).

The one place where images are scaled; every caller (training, evaluation, prediction,
plots, benchmarks, experiments) goes through :func:`scale_pixels`.
"""

import numpy as np


def scale_pixels(images, dtype=np.float32):
    """uint8 pixels of any shape, e.g. (n, 784), as ``dtype`` in [0, 1]: ``x / 255``.

    Parameters
    ----------
    images : array_like of uint8 (or any real values in 0..255)
    dtype : numpy float type, float32 (training default) or float64

    Returns
    -------
    ndarray of the same shape, ``dtype``, C-contiguous, a new array.
    """
    return np.asarray(images, dtype=dtype) / 255  # a Python int keeps the array's dtype


def mean_image(images, dtype=np.float32):
    """The mean of uint8 images (N, 784) scaled to [0, 1], per pixel: shape (784,), ``dtype``.

    Summed in float64 (exact for any N below 2**45 / 255), then divided and rounded once,
    so every backend and peer centres with the same values.
    """
    images = np.asarray(images)
    return (images.sum(axis=0, dtype=np.float64) / (255.0 * len(images))).astype(dtype)
