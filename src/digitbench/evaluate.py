"""Test-set evaluation: accuracy, per-class accuracy and the confusion matrix."""

import numpy as np

from .pixels import scale_pixels


def confusion_matrix(labels, predictions, n_classes=10):
    """Counts of shape (n_classes, n_classes): row = true label, column = predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.intp), np.asarray(predictions, dtype=np.intp)), 1)
    return matrix


def evaluate(backend, params, images, labels):
    """Evaluate ``params`` on uint8 ``images`` (n, 784) with integer ``labels`` (n,).

    Returns a dict with ``test_accuracy``, ``per_class_accuracy`` (10 floats),
    ``confusion_matrix`` (10 x 10 nested lists) and ``predictions`` (ndarray).
    """
    predictions = backend.predict(params, scale_pixels(images, params.W1.dtype))
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
