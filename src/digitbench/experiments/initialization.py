"""Initial weights: zero, constant, too small, too large, and He, side by side.

Every arm trains the ReLU network with the seed recipe (momentum 0.9 unless
``--momentum`` says otherwise) on ``--backend``, from the same shuffling; only the
starting weights differ (biases start at zero in all of them):

- ``zero``: every weight 0. Then z1 = 0, relu'(0) = 0 and a1 = a2 = 0, so
  dW1 = dW2 = dW3 = 0: no weight ever moves, only the last bias b3 learns, and the
  network predicts the most frequent class.
- ``constant``: every weight 0.01. Now the gradients are not zero, but all 128 units of
  a layer compute the same function of the same input and receive the same gradient,
  so they stay identical for ever (symmetry): the network behaves as 784-1-1-10. The
  table counts the distinct columns of W1 after training.
- ``too small``: He weights x 0.01. Each layer shrinks its input about 100-fold, the
  logits start near 0 and the gradients of the early layers are tiny (they are
  products of the later, tiny weights): learning starts late.
- ``too large``: He weights x 10. The logits start around 1000x larger, the first loss
  is enormous and the first steps throw the weights far away (the ReLUs die, or the
  loss overflows).
- ``he``: N(0, 2 / fan_in), which keeps the activations' variance constant through
  ReLU layers (:func:`digitbench.params.init_params`): the default.
"""

import numpy as np

from ..kernels.numpy_backend import forward_cache
from ..params import Params, init_params
from ..pixels import scale_pixels
from ..recipe import RECIPES
from .common import Results, format_table, percent, run_training, scaled_params


def initial_params(kind, seed):
    """The starting Params for one arm (float32)."""
    he = init_params(seed)
    if kind == "zero":
        return Params(*(np.zeros_like(a) for a in he))
    if kind == "constant":
        return Params(*(np.full_like(a, 0.01) if a.ndim == 2 else np.zeros_like(a) for a in he))
    if kind == "too small":
        return scaled_params(he, 0.01)
    if kind == "too large":
        return scaled_params(he, 10.0)
    return he


KINDS = ("zero", "constant", "too small", "too large", "he")


def distinct_columns(W, decimals=5):
    """How many different columns (hidden units' weight vectors) ``W`` has, to ``decimals``."""
    return int(np.unique(np.round(W.T, decimals), axis=0).shape[0])


def compute(args, data, backend):
    """Run the experiment; its numbers, table and figure data as a Results (nothing drawn)."""
    seed = RECIPES["seed"]
    recipe = dict(batch_size=seed["batch_size"], lr=seed["lr"], momentum=seed["momentum"],
                  schedule=seed["schedule"], decay=seed["decay"], epochs=args.epochs, seed=args.seed)
    if args.momentum is not None:
        recipe["momentum"] = args.momentum
    X = scale_pixels(data.test_images[:1000], np.float32)
    runs, rows = {}, []
    for kind in KINDS:
        start = initial_params(kind, args.seed)
        z3 = forward_cache(start, X)[-1]
        r = run_training(backend, data, params=start, **recipe)
        runs[kind] = r
        h = r["history"]
        outcome = "ok" if r["diverged"] is None else f"NaN in epoch {r['diverged']['epoch']}"
        rows.append([kind, f"{z3.std():.3g}", f"{r['losses'][0]:.4g}" if r["losses"] else "-",
                     f"{h[-1]['loss']:.4f}" if h else "-", percent(r["test_accuracy"]),
                     f"{distinct_columns(r['params'].W1)} / 128" if r["params"] is not None else "-", outcome])
    table = format_table(["init", "std of logits at start", "first loss", "last epoch loss", "test acc",
                          "distinct W1 columns after", "outcome"], rows)
    lines = [f"recipe: seed recipe (SGD batch {recipe['batch_size']}, lr {recipe['lr']} / (1 + {recipe['decay']} * "
             f"epoch), momentum {recipe['momentum']}), {recipe['epochs']} epochs on {len(data.train_labels)} training "
             f"images, seed {recipe['seed']}, backend {backend.name}",
             table,
             f"(most frequent test label: {np.bincount(data.test_labels).argmax()}, "
             f"{100 * np.bincount(data.test_labels).max() / len(data.test_labels):.2f}% of the test set)"]

    record = {"recipe": recipe, "runs": [
        {"init": kind, "test_accuracy": r["test_accuracy"], "first_loss": r["losses"][0] if r["losses"] else None,
         "loss_per_epoch": [e["loss"] for e in r["history"]], "diverged": r["diverged"],
         "distinct_W1_columns": distinct_columns(r["params"].W1) if r["params"] is not None else None}
        for kind, r in runs.items()]}
    return Results(lines, record, dict(runs=runs, recipe=recipe, backend=backend.name))
