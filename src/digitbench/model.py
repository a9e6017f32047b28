"""A trained model as one object: load it, then predict from files, PIL images or arrays.

::

    model = digitbench.load_model("model.npz")
    model.predict(["seven.png", pil_image, uint8_array])      # array([7, 2, 1])
    model.predict_proba(["seven.png"])                        # shape (1, 10)
    model.class_names(model.predict(["shoe.png"]))           # ["sneaker"] for Fashion-MNIST

:class:`Model` is a named tuple ``(params, meta)``, so ``params, meta =
load_model(path)`` keeps working.
"""

import os
from typing import NamedTuple

import numpy as np

from .backends import backend_for
from .errors import ImageError
from .model_io import load_model as _read_model
from .networks import network_of
from .params import Params
from .evaluate import predicted_labels
from .predict import frame_digit, predict_pixels, preprocess_image

#: The name of each class, by data set (MNIST's classes are the digits themselves).
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "trouser", "pullover", "dress", "coat",
                      "sandal", "shirt", "sneaker", "bag", "ankle boot"),
}


class Model(NamedTuple):
    """A trained network and what its file says about it.

    Attributes
    ----------
    params : Params, the MLP's weights (W1 of shape (784, 128), ..., b3 of shape (10,)),
        or CnnParams, the CNN's (W1 of shape (16, 1, 5, 5), ..., b4 of shape (10,))
    meta : dict, the file's metadata (``network``, ``dataset``, ``backend``, ``test_accuracy``, ...)
    """

    params: Params
    meta: dict

    def __repr__(self):
        """One line: network, dtype, data set and test accuracy, never the weight arrays."""
        accuracy = self.meta.get("test_accuracy")
        accuracy = "unknown" if accuracy is None else f"{100 * accuracy:.2f}%"
        return (f"Model(network={self.network}, dtype={np.dtype(self.params[0].dtype).name}, "
                f"dataset={self.dataset}, test_accuracy={accuracy})")

    @property
    def network(self):
        """The network the weights are for: "mlp" or "cnn" (by the type of ``params``)."""
        return network_of(self.params).name

    @property
    def dataset(self):
        """The data set the model was trained on ("mnist" or "fashion-mnist")."""
        return self.meta.get("dataset") or "mnist"

    def class_names(self, labels):
        """The names of integer ``labels`` (any iterable), e.g. ["7"] or ["sneaker"]."""
        names = CLASS_NAMES.get(self.dataset, CLASS_NAMES["mnist"])
        return [names[int(k)] for k in labels]

    def predict_proba(self, images, backend="numpy"):
        """Class probabilities, one row per image.

        Parameters
        ----------
        images : a list whose items are each an image file path, a PIL image, or an
            array: shape (28, 28) or (784,) is taken as MNIST pixels as they are (uint8
            0..255, or floats in [0, 1]); any other 2-D array is a grayscale picture
            (0..255), framed as :mod:`digitbench.predict` frames files. An array of
            shape (n, 784) or (n, 28, 28) is n MNIST images.
        backend : str or Backend, which implementation computes (default: numpy), for
            the model's network whatever network a Backend object was made for

        Returns
        -------
        ndarray of shape (n, 10), each row summing to 1.

        Raises
        ------
        ImageError naming the first image that is not a readable digit.
        """
        backend = backend_for(backend, self.network)
        return predict_pixels(backend, self.params, as_pixels(images))

    def predict(self, images, backend="numpy"):
        """Predicted labels, ndarray of shape (n,), int64: the arg-max of the logits
        (:func:`digitbench.evaluate.predicted_labels`; see :meth:`predict_proba`)."""
        backend = backend_for(backend, self.network)
        pixels = as_pixels(images)
        return predicted_labels(backend, self.params, pixels, predict_pixels(backend, self.params, pixels))


def load_model(path):
    """Read a model file written by ``digitbench train`` (or :func:`~digitbench.save_model`).

    Returns
    -------
    Model, a named tuple (params, meta) with ``predict`` and ``predict_proba``.
    """
    return Model(*_read_model(path))


def as_pixels(images):
    """``images`` (see :meth:`Model.predict_proba`) as uint8 MNIST pixels of shape (n, 784).

    Nested Python lists of numbers are taken as the array they spell. An array passed
    alone is MNIST pixels: one image, (28, 28) or (784,), or n of them, (n, 784) or
    (n, 28, 28); any other shape is refused (a picture of another size goes in a list).
    """
    if isinstance(images, (list, tuple)) and images and all(_is_numbers(x) for x in images):
        images = np.asarray(images)
    if isinstance(images, np.ndarray):
        if images.shape in ((28, 28), (784,)):
            return _mnist_pixels(images, "image 0").reshape(1, 784)
        if not ((images.ndim == 2 and images.shape[1] == 784) or (images.ndim == 3 and images.shape[1:] == (28, 28))):
            raise ImageError(f"an array of shape {images.shape} is neither one MNIST image, (28, 28) or (784,), "
                             "nor n of them, (n, 784) or (n, 28, 28); pass a picture of another size in a list")
        if len(images) == 0:
            return np.zeros((0, 784), np.uint8)
        return np.stack([_mnist_pixels(x, f"image {k}") for k, x in enumerate(images)])
    if isinstance(images, (str, os.PathLike)) or hasattr(images, "getpixel"):
        images = [images]  # one image
    rows = [_one_image(x, k) for k, x in enumerate(images)]
    if not rows:
        return np.zeros((0, 784), np.uint8)
    return np.stack(rows)


def _is_numbers(item):
    """True for a number or a (nested) list or tuple of numbers: part of an array spelled in lists."""
    if isinstance(item, (list, tuple)):
        return all(_is_numbers(x) for x in item)
    return isinstance(item, (int, float, np.number)) and not isinstance(item, bool)


def _one_image(image, k):
    if isinstance(image, (str, os.PathLike)):
        return preprocess_image(image)
    if not isinstance(image, np.ndarray) and hasattr(image, "getpixel"):  # a PIL image
        return preprocess_image(image, f"image {k} (a PIL image)")
    array = np.asarray(image)
    if array.shape in ((28, 28), (784,)):
        return _mnist_pixels(array, f"image {k}")
    if array.ndim != 2 or array.dtype.kind not in "uif" or array.size == 0:
        raise ImageError(f"image {k}: an array of shape {array.shape} and dtype {array.dtype} is not a "
                         "grayscale picture (expected 2-D numbers, or 28 x 28 MNIST pixels)")
    gray = array.astype(np.float64)
    if not np.isfinite(gray).all() or gray.min() < 0 or gray.max() > 255:
        raise ImageError(f"image {k}: pixels must be finite and in 0..255")
    return frame_digit(gray, f"image {k}")


def _mnist_pixels(array, name):
    """A (28, 28) or (784,) array as uint8 (784,): uint8 as it is, floats in [0, 1] times 255."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.reshape(784)
    if array.dtype.kind not in "uif":
        raise ImageError(f"{name}: pixels of dtype {array.dtype} are not numbers")
    values = array.astype(np.float64).reshape(784)
    if array.dtype.kind == "f":
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise ImageError(f"{name}: float pixels must be in [0, 1] (MNIST scaled), or pass uint8 0..255")
        values = values * 255
    elif values.min() < 0 or values.max() > 255:
        raise ImageError(f"{name}: integer pixels must be in 0..255")
    return np.round(values).astype(np.uint8)
