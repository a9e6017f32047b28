"""Training recipes and the training loop of the accuracy benchmarks (APPEND, NEVER CHANGE).

The accuracy series must move only when a backend's arithmetic or speed moves, not when
the project retunes its own recipes or its trainer checks more often. So the recipes,
the initial weights, the epoch order and the check frequency are written here, frozen,
and each commit contributes only its backend (``train_batches`` and ``predict``).
To try another recipe, append one under a new name and a new benchmark.
"""

import inspect
import time

import numpy as np

from .common import DTYPE, steps_per_call, trainer

#: name -> recipe. ``seed``: the recipe of the write-up this project started from, lr 0.01 / (1 + 0.05 e)
#: in epoch e, momentum 0.9, batch 64, 30 epochs. ``fast``: the quickest route to 97%
#: found on this project (lr 0.1 falling linearly to 0 over 2 epochs, momentum 0.9).
RECIPES = {
    "seed": dict(epochs=30, batch_size=64, lr=0.01, momentum=0.9, schedule="inverse-time", decay=0.05),
    "fast": dict(epochs=2, batch_size=64, lr=0.1, momentum=0.9, schedule="linear", decay=0.0),
    # appended 2026-11: digitbench's ``fast`` of that date. Centred inputs (trained as on
    # x - the training mean image, the raw network's parameters kept: ``train_batches``'s
    # ``mean``), lr 0.1 * max(0.1, 1 - t) at t epochs, momentum 0.9, batch 64.
    "fast-centred": dict(epochs=2, batch_size=64, lr=0.1, momentum=0.9, schedule="linear-floor", decay=1.0,
                         floor=0.1, center=True),
    # appended 2026-12: digitbench's ``fast`` of that date, a fixed-length recipe (one
    # epoch, chosen on held-out training images): trained to its end, evaluated once.
    "fast-fixed": dict(epochs=1, batch_size=64, lr=0.1, momentum=0.9, schedule="linear-floor", decay=1.0,
                       floor=0.1, center=True),
    # appended 2026-12: digitbench's ``cnn-fast`` of that date, the CNN's fixed-length
    # time-to-99% recipe (lr 0.05 falling linearly to 0 over 3 epochs, momentum 0.9, batch 64).
    "cnn-fast": dict(epochs=3, batch_size=64, lr=0.05, momentum=0.9, schedule="linear", decay=0.0),
}
#: Test accuracy is measured every this many steps (about a quarter epoch at batch 64)
#: and at the end of each epoch; the clock stops during the measurement.
CHECK_EVERY_STEPS = 235
#: Seed of the initial weights and of every epoch's order.
SEED = 0


def learning_rates(recipe, steps_per_epoch):
    """The learning rate of every step, float64 of shape (epochs * steps_per_epoch,).

    ``inverse-time``: lr / (1 + decay * e) in epoch e; ``linear``: lr * (1 - t / T) at step t of T;
    ``linear-floor``: lr * max(floor, 1 - decay * t) at t epochs (fractional).
    """
    steps = recipe["epochs"] * steps_per_epoch
    if recipe["schedule"] == "inverse-time":
        return recipe["lr"] / (1.0 + recipe["decay"] * (np.arange(steps) // steps_per_epoch))
    if recipe["schedule"] == "linear":
        return recipe["lr"] * (1.0 - np.arange(steps) / steps)
    if recipe["schedule"] == "linear-floor":
        return recipe["lr"] * np.maximum(recipe["floor"], 1.0 - recipe["decay"] * np.arange(steps) / steps_per_epoch)
    raise ValueError(f"unknown schedule {recipe['schedule']!r}")


def he_params(seed=SEED, dtype=DTYPE):
    """He-initialised weights, zero biases: six arrays W1 (784, 128), b1, W2 (128, 64), b2, W3 (64, 10), b3."""
    import digitbench

    rng = np.random.default_rng(seed)
    arrays = []
    for fan_in, fan_out in ((784, 128), (128, 64), (64, 10)):
        arrays.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype))
        arrays.append(np.zeros(fan_out, dtype))
    return digitbench.Params(*arrays)


def train(backend, data, recipe, target=None, epochs=None, initial=None):
    """Train ``backend`` with ``recipe`` on ``data`` = (Xtr, ytr, Xte, yte); a dict of results.

    The weights start at ``initial`` (trained in place), by default :func:`he_params`
    (the MLP's); the CNN's benchmarks pass the CNN's.

    Returns ``test_accuracy`` (fraction, after the last epoch), ``train_seconds`` (only
    the ``train_batches`` calls are on the clock) and ``seconds_to_target`` (clock when
    the test accuracy first reached ``target``, None if it did not; with a target,
    training stops there).
    """
    Xtr, ytr, Xte, yte = data
    labels = np.ascontiguousarray(ytr, dtype=np.int64)
    X_test, y_test = np.ascontiguousarray(Xte, dtype=DTYPE) / 255, np.asarray(yte, dtype=np.int64)
    recipe = dict(recipe, epochs=epochs or recipe["epochs"])
    bs = recipe["batch_size"]
    per_epoch = -(-len(Xtr) // bs)
    lrs = learning_rates(recipe, per_epoch)
    p = he_params() if initial is None else initial
    mean = None
    if recipe.get("center"):  # the centred network's first bias is 0: the raw one's is -mean @ W1
        mean = (np.asarray(Xtr).sum(axis=0, dtype=np.float64) / (255.0 * len(Xtr))).astype(DTYPE)
        p = p._replace(b1=(p.b1 - mean @ p.W1).astype(DTYPE))
    velocity = type(p)(*(np.zeros_like(w) for w in p))
    rng = np.random.default_rng(SEED)
    clock, reached = 0.0, None
    run = trainer(backend)  # one run: its threads and buffers kept from call to call
    for epoch in range(recipe["epochs"]):
        order = rng.permutation(len(Xtr)).astype(np.int64)
        step = 0
        while step < per_epoch:
            k = min(CHECK_EVERY_STEPS, per_epoch - step)
            clock += _steps(backend, run, p, velocity, Xtr, labels, order, bs, step, k,
                            lrs[epoch * per_epoch:], recipe["momentum"], mean)
            step += k
            if target is not None:
                accuracy = float(np.mean(backend.predict(p, X_test) == y_test))
                if accuracy >= target:
                    reached = clock
                    break
        if reached is not None:
            break
    accuracy = float(np.mean(backend.predict(p, X_test) == y_test))
    return {"test_accuracy": accuracy, "train_seconds": clock, "seconds_to_target": reached}


def _steps(backend, run, p, velocity, images, labels, order, bs, first, k, lrs, momentum, mean=None):
    """Steps ``first .. first + k`` of an epoch in calls of at most ``steps_per_call``; seconds taken.

    With ``mean``, the steps are those of centred inputs; a commit whose backends predate
    them (no ``mean`` argument) is skipped (NotImplementedError)."""
    centring = {}
    if mean is not None:
        if "mean" not in inspect.signature(backend.train_batches).parameters:
            raise NotImplementedError("this commit's backends do not train on centred inputs")
        centring = {"mean": mean}
    chunk = steps_per_call(backend, k)
    start = time.perf_counter()
    for s in range(first, first + k, chunk):
        n = min(chunk, first + k - s)
        losses = run.train_batches(p, velocity, images, labels, order[s * bs:(s + n) * bs], bs,
                                   lrs[s:s + n], momentum, **centring)
        if not np.all(np.isfinite(losses)):
            raise RuntimeError(f"training diverged at step {s} (loss {losses[-1]})")
    return time.perf_counter() - start
