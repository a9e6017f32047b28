"""Time to a target test accuracy (97% by default), the same protocol for every contender.

The headline figure: a **fixed-length recipe**. Its number of steps is decided in
advance (``fast`` in :data:`digitbench.recipe.RECIPES`, chosen by
``tools/recipe_search.py`` on a validation split held out of the training images, never
on the test set; for the CNN's 99%, ``cnn-fast``: :data:`HEADLINES`). Each seed trains
the whole recipe on the clock, and the test set is evaluated once, at the end, off the
clock (:func:`run_fixed`). Over at least :data:`FIXED_SEEDS` seeds (:func:`summarize_fixed`): the training time as a median with
its spread, the mean test accuracy with a 95% interval (:mod:`digitbench.stats`), and
the share of seeds at or above the target. The recipe reaches the target when the mean
does. This is how Keller Jordan's airbench reports CIFAR-10 speed records: no check
during training can stop the clock on a lucky seed.

A secondary figure, always labelled "first check": the test accuracy checked
:data:`CHECKS_PER_EPOCH` times an epoch (off the clock), the clock stopped at the first
check at or above the target (:func:`run_to_target`), five seeds, the fastest and
slowest dropped and the mean of the other three kept (MLPerf Training's rule,
:func:`summarize`). Each check is a chance for noise to cross the line, so this figure
is biased towards luck: it is shown for comparison only.

The closed comparison: every contender runs exactly the same recipe (SGD, heavy-ball
momentum, batch, rate, schedule, centred inputs: ``reset(seed, mean)``), from the same
initial weights (``init_params(seed)``) over the same batches (the permutation of each
epoch drawn as ``digitbench train`` draws it). The open comparison: each contender may
use its best recipe on the same network and data (a contender's ``open_recipe``; one
without runs the closed recipe again, labelled so).

The clock: training only. Before it starts, each distinct length of training call is
run once on throwaway weights, so that compiling a new shape (XLA, inductor) is never
on the clock.
"""

import dataclasses
import math
import statistics
import time

import numpy as np

from .datasets import MnistData
from .pixels import mean_image
from .recipe import RECIPES, THROUGHPUT, Recipe, learning_rates
from .sgd import chunk_bounds
from .stats import bootstrap_mean, fraction_at_least, median_spread

TARGET = 0.97
#: Each network's headline: the fixed-length recipe of :data:`~digitbench.recipe.RECIPES`
#: and the test accuracy it is timed to (the MLP's 97%, the CNN's 99%).
HEADLINES = {"mlp": ("fast", TARGET), "cnn": ("cnn-fast", 0.99)}
CHECKS_PER_EPOCH = 20
SEEDS = (0, 1, 2, 3, 4)
#: Seeds of the fixed-length figure: at least 20, for an interval on the mean accuracy.
FIXED_SEEDS = 20
#: Training images held out (the last ones) to choose a recipe on, never the test set.
VALIDATION_IMAGES = 10_000
#: The recipe fields every contender implements; a recipe needing more cannot be closed.
RECIPE_FIELDS = ("epochs", "batch_size", "lr", "momentum", "schedule", "decay", "center")
#: Fields a recipe may carry that change nothing in the training arithmetic.
DESCRIPTIVE_FIELDS = ("name", "description", "doc", "notes", "target_accuracy")


def closed_recipe(name="fast"):
    """The named recipe of :mod:`digitbench.recipe` as a plain dict of :data:`RECIPE_FIELDS`
    (a field the recipe leaves out at :class:`~digitbench.recipe.Recipe`'s default), with
    its ``name`` and ``network`` (default "mlp").

    Raises
    ------
    ValueError when the recipe uses something the contenders do not implement (another
    momentum, extra fields such as Nesterov or input standardization).
    """
    recipe = RECIPES[name]
    values = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) else dict(recipe)
    extra = {k: v for k, v in values.items()
             if k not in RECIPE_FIELDS + DESCRIPTIVE_FIELDS + ("network",) and v not in (None, False, 0, "", "float32")}
    if extra or values.get("momentum") != THROUGHPUT.momentum:
        raise ValueError(f"recipe {name!r} needs {extra or {'momentum': values.get('momentum')}}, "
                         "which the peers do not implement")
    defaults = {f.name: f.default for f in dataclasses.fields(Recipe)}
    return {k: values.get(k, defaults[k]) for k in RECIPE_FIELDS} | {"name": name,
                                                                       "network": values.get("network", "mlp")}


def validation_data(data, n=VALIDATION_IMAGES):
    """The training images split in two: the first ``len - n`` to train on, the last ``n``
    in the place of the test set. The test arrays of ``data`` are not read.

    Returns
    -------
    MnistData with train (N - n, 784), (N - n,) and "test" (n, 784), (n,) views
    """
    if not 0 < n < len(data.train_images):
        raise ValueError(f"cannot hold out {n} of {len(data.train_images)} training images")
    cut = len(data.train_images) - n
    return MnistData(data.train_images[:cut], data.train_labels[:cut], data.train_images[cut:],
                     data.train_labels[cut:])


def chunks(steps_per_epoch, checks=CHECKS_PER_EPOCH):
    """(first, last) steps between checks: ``checks`` evenly spaced chunks of one epoch.

    >>> chunks(10, 4)
    [(0, 3), (3, 5), (5, 8), (8, 10)]
    """
    return chunk_bounds(steps_per_epoch, [math.ceil(k * steps_per_epoch / checks) for k in range(1, checks)])


def _centre(recipe, data, mean):
    """The mean image a ``center`` recipe trains on (made unless given), else None."""
    if not recipe.get("center"):
        return None
    return mean_image(data.train_images) if mean is None else mean


def run_to_target(contender, data, recipe, seed, target=TARGET, checks=CHECKS_PER_EPOCH, mean=None):
    """Train one prepared contender from ``init_params(seed)`` until ``target``; a dict.

    A recipe with ``center`` trains as on ``x - mean``, ``mean`` the training images'
    mean (:func:`~digitbench.pixels.mean_image`), made here unless given.

    Returns
    -------
    dict with ``seed``, ``seconds`` (training clock at the target, None if not reached),
    ``epochs`` (fraction of epochs trained), ``accuracy`` (at the last check),
    ``eval_seconds`` (off the clock) and ``checks`` (how many were made); and, for a
    contender that chooses its threads by timing, ``thread_choice`` (what it ended on).
    """
    b, n = recipe["batch_size"], len(data.train_images)
    if contender.batch_size != b:
        contender.prepare(data, b, seed)
    steps = math.ceil(n / b)
    lrs = learning_rates(recipe["schedule"], recipe["lr"], recipe["decay"], recipe["epochs"], steps)
    pieces = chunks(steps, checks)
    labels = np.asarray(data.test_labels, dtype=np.int64)
    mean = _centre(recipe, data, mean)
    contender.reset(seed, mean)
    for samples in sorted({min(last * b, n) - first * b for first, last in pieces}):
        contender.train(np.arange(samples, dtype=np.int64), np.zeros(math.ceil(samples / b)))  # shapes compiled
    contender.predict(contender.test)
    contender.reset(seed, mean)
    rng = np.random.default_rng(seed)  # as digitbench train draws its permutations
    clock = evals = 0.0
    made, accuracy = 0, None
    for epoch in range(recipe["epochs"]):
        order = rng.permutation(n).astype(np.int64)
        for first, last in pieces:
            t0 = time.perf_counter()
            contender.train(order[first * b:last * b], lrs[epoch * steps + first:epoch * steps + last])
            clock += time.perf_counter() - t0
            t0 = time.perf_counter()
            accuracy = float(np.mean(contender.predict(contender.test) == labels))
            evals += time.perf_counter() - t0
            made += 1
            if accuracy >= target:
                return dict(seed=seed, seconds=clock, epochs=epoch + last / steps, accuracy=accuracy,
                            eval_seconds=evals, checks=made, **_thread_choice(contender))
    return dict(seed=seed, seconds=None, epochs=recipe["epochs"], accuracy=accuracy, eval_seconds=evals,
                checks=made, **_thread_choice(contender))


def _thread_choice(contender):
    """``thread_choice``: the thread count a contender that chooses it by timing ended on,
    and why (digitbench's numba backend); nothing for the others."""
    choice = getattr(contender, "thread_choice", None)
    return {"thread_choice": choice} if choice else {}


def summarize(runs):
    """MLPerf's rule over the seeds' ``runs``: drop the fastest and slowest, mean the rest.

    Returns
    -------
    dict with ``seconds`` (None without a result), ``spread`` ((min, max) of the seeds
    kept), ``kept`` (their seeds), ``reached`` and ``seeds`` (counts), ``rule``.
    """
    times = sorted((math.inf if r["seconds"] is None else r["seconds"], r["seed"]) for r in runs)
    failed = sum(t == math.inf for t, _ in times)
    kept = times[1:-1] if len(times) >= 3 else times
    out = dict(reached=len(times) - failed, seeds=len(times),
               rule="mean of the middle three of five seeds (fastest and slowest dropped)" if len(times) == 5
               else f"mean of {len(kept)} of {len(times)} seeds (fastest and slowest dropped when 3 or more)")
    if failed > (1 if len(times) >= 3 else 0):
        return out | dict(seconds=None, spread=None, kept=[])
    values = [t for t, _ in kept]
    return out | dict(seconds=statistics.fmean(values), spread=(min(values), max(values)),
                      kept=[s for _, s in kept])


def run_fixed(contender, data, recipe, seed, mean=None, warm=True):
    """Train one prepared contender through the whole ``recipe`` from ``init_params(seed)``.

    One training call an epoch, on the clock; the test set evaluated once, at the end, off
    the clock. With ``warm``, each call length is run first on throwaway weights (a
    contender compiles its shapes there), then the weights are reset.

    Returns
    -------
    dict with ``seed``, ``seconds`` (training clock), ``epochs``, ``accuracy`` (test, at the
    end), ``eval_seconds``; and a timing contender's ``thread_choice``.
    """
    b, n = recipe["batch_size"], len(data.train_images)
    if contender.batch_size != b:
        contender.prepare(data, b, seed)
    if len(contender.test) != len(data.test_labels):
        raise ValueError("the contender was prepared on other data: prepare(data, ...) first")
    steps = math.ceil(n / b)
    lrs = learning_rates(recipe["schedule"], recipe["lr"], recipe["decay"], recipe["epochs"], steps)
    mean = _centre(recipe, data, mean)
    if warm:
        contender.reset(seed, mean)
        contender.train(np.arange(n, dtype=np.int64), np.zeros(steps))  # shapes compiled, weights unchanged
        contender.predict(contender.test)
    contender.reset(seed, mean)
    rng = np.random.default_rng(seed)  # as digitbench train draws its permutations
    clock = 0.0
    for epoch in range(recipe["epochs"]):
        order = rng.permutation(n).astype(np.int64)
        t0 = time.perf_counter()
        contender.train(order, lrs[epoch * steps:(epoch + 1) * steps])
        clock += time.perf_counter() - t0
    t0 = time.perf_counter()
    accuracy = float(np.mean(contender.predict(contender.test) == np.asarray(data.test_labels, dtype=np.int64)))
    return dict(seed=seed, seconds=clock, epochs=recipe["epochs"], accuracy=accuracy,
                eval_seconds=time.perf_counter() - t0, **_thread_choice(contender))


def summarize_fixed(runs, target=TARGET):
    """The fixed-length figure over the seeds' ``runs`` (each with ``seconds`` and ``accuracy``).

    Returns
    -------
    dict with ``seconds`` (median training time), ``spread`` ((min, max)), ``accuracy``
    (mean test accuracy), ``accuracy_ci`` (its 95% bootstrap interval), ``at_target``
    (share of seeds at or above ``target``), ``reached`` (the mean is at or above the
    target: the recipe's time counts as a time to target), ``seeds`` and ``rule``.
    """
    seconds, spread = median_spread([r["seconds"] for r in runs])
    accuracy, interval = bootstrap_mean([r["accuracy"] for r in runs])
    return dict(seconds=seconds, spread=spread, accuracy=accuracy, accuracy_ci=interval,
                at_target=fraction_at_least([r["accuracy"] for r in runs], target), reached=accuracy >= target,
                seeds=len(runs), target=target,
                rule=f"fixed-length recipe; median training time of {len(runs)} seeds (min-max); test set evaluated "
                     f"once at the end; mean accuracy with its 95% bootstrap interval")


def fixed_seeds(contender, data, recipe, seeds, target=TARGET, mean=None):
    """:func:`run_fixed` for every seed (compiling once) and :func:`summarize_fixed` of them."""
    runs = [run_fixed(contender, data, recipe, s, mean, warm=i == 0) for i, s in enumerate(seeds)]
    return summarize_fixed(runs, target) | {"recipe": recipe["name"], "runs": runs}


def compare(contender, data, recipe, seeds=tuple(range(FIXED_SEEDS)), target=TARGET, checks=CHECKS_PER_EPOCH,
            first_check_seeds=SEEDS):
    """Closed and open time to ``target`` for one prepared contender (a JSON-able dict).

    ``closed`` and ``open``: the fixed-length figure over ``seeds``; ``first_check``: the
    secondary figure (closed recipe, stopped at the first check at or above the target)
    over ``first_check_seeds`` (none: not measured).
    """
    mean = mean_image(data.train_images)  # once for every centred run (15 ms each)
    result = {"closed": fixed_seeds(contender, data, recipe, seeds, target, mean)}
    open_recipe = getattr(contender, "open_recipe", None)
    if open_recipe is None:
        result["open"] = result["closed"] | {"recipe": f"{recipe['name']} (closed recipe: no better one given)"}
    else:
        result["open"] = fixed_seeds(contender, data, open_recipe, seeds, target, mean)
    if first_check_seeds:
        runs = [run_to_target(contender, data, recipe, s, target, checks, mean) for s in first_check_seeds]
        result["first_check"] = summarize(runs) | {"recipe": recipe["name"], "checks_per_epoch": checks,
                                                   "runs": runs}
    return result
