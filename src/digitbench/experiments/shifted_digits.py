"""Shifted digits: how much of its accuracy each network keeps when the digit moves.

MNIST's digits are centred by their centre of mass in the 28 x 28 frame, in training
and test alike. Here the test images are moved by 1 to :data:`MAX_SHIFT` pixels right,
down, left and up (:func:`shift_images`, the pixels moved in are 0, the background), and
both networks, trained on the unmoved training images, are scored on them:

- the MLP (the ``fast`` recipe: its one epoch, 109,386 parameters). Its first layer
  ``z1 = x @ W1 + b1`` ties weight ``W1[p, k]`` to pixel ``p``: a stroke moved to the
  next pixel meets other weights, which training tuned for other strokes;
- the CNN (the ``cnn`` recipe, ``--epochs`` overriding its 4; 215,370 parameters). A
  convolution uses one 5 x 5 kernel at every position, so a moved digit gives the same
  maps, moved (weight sharing: translation equivariance); each 2 x 2 max pooling keeps a
  window's largest value wherever in the window it is, which forgives some moves of one
  pixel. Only the dense layer after the second pooling is tied to positions, on a grid
  of 7 x 7 cells 4 pixels wide, so the CNN loses accuracy too, more slowly.

Both are trained with :func:`digitbench.train.train` on ``--backend`` (``--momentum``
overrides both recipes' momentum) and scored with :func:`digitbench.evaluate.evaluate`.
"""

import numpy as np

from ..backends import backend_for
from ..evaluate import evaluate
from ..networks import get_network, n_params
from ..train import train
from .common import Results, format_table, percent, recipe_overrides

#: Shifts in pixels; 0 is the unmoved test set.
MAX_SHIFT = 4
#: direction -> (rows down, columns right) for a shift of one pixel
DIRECTIONS = {"right": (0, 1), "down": (1, 0), "left": (0, -1), "up": (-1, 0)}
#: network -> the recipe it is trained with
NETWORK_RECIPES = {"mlp": "fast", "cnn": "cnn"}
SIDE = 28


def shift_images(images, down, right, side=SIDE):
    """``images`` (n, side * side) moved ``down`` rows and ``right`` columns (negative:
    up, left), zero-filled where nothing moved in.

    ``out[i, r, c] = images[i, r - down, c - right]`` where that pixel exists, else 0.

    Returns
    -------
    ndarray of shape (n, side * side), the dtype of ``images``
    """
    square = np.asarray(images).reshape(-1, side, side)
    out = np.zeros_like(square)
    h, w = side - abs(down), side - abs(right)
    if h > 0 and w > 0:
        out[:, max(down, 0):max(down, 0) + h, max(right, 0):max(right, 0) + w] = \
            square[:, max(-down, 0):max(-down, 0) + h, max(-right, 0):max(-right, 0) + w]
    return out.reshape(len(square), side * side)


def shifted_accuracies(backend, params, images, labels, max_shift=MAX_SHIFT):
    """Accuracy of ``params`` on ``images`` (n, 784) shifted 0..max_shift pixels each way.

    Returns
    -------
    dict direction -> list of max_shift + 1 accuracies (index = shift in pixels; index 0,
    the unmoved images, is scored once and shared)
    """
    unmoved = evaluate(backend, params, images, labels)["test_accuracy"]
    return {direction: [unmoved] + [evaluate(backend, params, shift_images(images, dy * k, dx * k), labels)
                                    ["test_accuracy"] for k in range(1, max_shift + 1)]
            for direction, (dy, dx) in DIRECTIONS.items()}


def compute(args, data, backend):
    """Train both networks, score them on the shifted test sets; a Results (nothing drawn)."""
    runs = {}
    for network, recipe in NETWORK_RECIPES.items():
        epochs = {"epochs": args.epochs} if network == "cnn" else {}
        result = train(backend.name, data, recipe=recipe, seed=args.seed, **epochs, **recipe_overrides(args))
        accuracy = shifted_accuracies(backend_for(backend.name, network), result.params, data.test_images,
                                      data.test_labels)
        runs[network] = {"network": network, "recipe": recipe, "epochs": result.epochs_run,
                         "parameters": n_params(get_network(network)),
                         "train_seconds": result.train_seconds, "test_accuracy": result.test_accuracy,
                         "accuracy": accuracy,
                         "mean_accuracy": np.mean(list(accuracy.values()), axis=0).tolist()}
    head = format_table(["network", "recipe", "epochs", "parameters", "training time"],
                        [[n, r["recipe"], r["epochs"], f"{r['parameters']:,}", f"{r['train_seconds']:.1f} s"]
                         for n, r in runs.items()])
    rows = [[f"{k} px"] + [f"{percent(r['mean_accuracy'][k])} ({percent(min(a[k] for a in r['accuracy'].values()))})"
                           for r in runs.values()] for k in range(MAX_SHIFT + 1)]
    lines = [f"trained on {len(data.train_labels)} training images ({backend.name} backend, seed {args.seed}); "
             f"scored on {len(data.test_labels)} test images moved right, down, left and up, zero-filled",
             head, "",
             "test accuracy by shift: mean of the four directions (the worst)",
             format_table(["shift"] + list(runs), rows)]
    record = {"train_images": int(len(data.train_labels)), "test_images": int(len(data.test_labels)),
              "seed": args.seed, "directions": list(DIRECTIONS), "shifts": list(range(MAX_SHIFT + 1)),
              "runs": list(runs.values())}
    return Results(lines, record, dict(runs=runs, shifts=list(range(MAX_SHIFT + 1)),
                                       test_images=int(len(data.test_labels))))
