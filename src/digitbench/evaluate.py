"""Test-set evaluation: accuracy, per-class accuracy and the confusion matrix.

Every command that reports on a model's outputs (``evaluate``, ``plot``, ``predict``)
gets them through :func:`model_probabilities` or checks them with
:func:`require_finite_outputs`: a model whose outputs are NaN or infinite (weights
that overflow float32, say) is refused with one line instead of being scored, since
``argmax`` of a NaN row is 0 and would count silently as "digit 0".
"""

import numpy as np

from .errors import ModelFileError
from .kernels.base import settle_ties
from .pixels import scale_pixels
from .threads import inference_threads

#: Rows per forward pass: bounds the activations' memory, (chunk, 128) floats and so on.
CHUNK = 2000


def model_probabilities(backend, params, images, source="the model"):
    """The model's probabilities on uint8 ``images``, refused unless all finite.

    Parameters
    ----------
    backend : a :class:`digitbench.kernels.base.Backend`
    params : Params
    images : ndarray of shape (n, 784), uint8
    source : str, the model's name for the message (its path)

    Returns
    -------
    ndarray of shape (n, 10): each row a softmax distribution

    Raises
    ------
    ModelFileError
        Some output is NaN or infinite (see :func:`require_finite_outputs`).
    """
    X = scale_pixels(images, params.W1.dtype)
    # Overflow inside the forward pass is detected below, row by row: no RuntimeWarning noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), \
            inference_threads(backend) as threads:
        p = np.concatenate([backend.forward(params, X[i:i + CHUNK], threads=threads) for i in range(0, len(X), CHUNK)])
    require_finite_outputs(p, source, params)
    return p


def require_finite_outputs(probabilities, source="the model", params=None):
    """Refuse outputs (n, 10) with a NaN or infinite entry, in one line naming ``source``.

    ``predict`` calls this on the probabilities of its images; ``params`` (optional)
    lets the message give the largest weight, the usual cause.
    """
    bad = ~np.isfinite(probabilities).all(axis=1)
    if bad.any():
        largest = "" if params is None else \
            f"; its largest weight is {max(float(np.abs(a).max()) for a in params):.3g}"
        raise ModelFileError(f"{source}: the model's outputs are not finite (NaN or infinite) on {int(bad.sum())} "
                             f"of {len(bad)} images{largest}: it diverged or was edited; retrain it "
                             "(e.g. with a smaller --lr)")


def predicted_labels(backend, params, images, probabilities):
    """The class of each image (n,), int64: the arg-max of its logits.

    ``probabilities`` (n, 10) are the model's on ``images`` (n, 784); where float
    rounding made their largest value shared, the logits decide
    (:func:`digitbench.kernels.base.settle_ties`). ``evaluate``, ``predict``, ``plot``
    and ``Model.predict`` all take their answers from here.
    """
    return settle_ties(backend, params, images, probabilities, np.argmax(probabilities, axis=1).astype(np.int64))


def confusion_matrix(labels, predictions, n_classes=10):
    """Counts of shape (n_classes, n_classes): row = true label, column = predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.intp), np.asarray(predictions, dtype=np.intp)), 1)
    return matrix


def evaluate(backend, params, images, labels, source="the model"):
    """Evaluate ``params`` on uint8 ``images`` (n, 784) with integer ``labels`` (n,).

    Returns a dict with ``test_accuracy``, ``per_class_accuracy`` (10 floats),
    ``confusion_matrix`` (10 x 10 nested lists) and ``predictions`` (ndarray). Raises
    ModelFileError, naming ``source``, when the model's outputs are not finite.
    """
    predictions = predicted_labels(backend, params, images, model_probabilities(backend, params, images, source))
    matrix = confusion_matrix(labels, predictions)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {
        "test_accuracy": float(np.mean(predictions == labels)),
        "per_class_accuracy": [float(a) for a in per_class],
        "confusion_matrix": matrix.tolist(),
        "predictions": predictions,
    }


def format_confusion(matrix, per_class):
    """The confusion matrix as aligned text, with per-class accuracy at the right."""
    lines = ["true\\pred " + "".join(f"{j:>6}" for j in range(len(matrix))) + "   accuracy"]
    for i, row in enumerate(matrix):
        lines.append(f"{i:>9} " + "".join(f"{c:>6}" for c in row) + f"   {100 * per_class[i]:6.2f}%")
    return "\n".join(lines)
