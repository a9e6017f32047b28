"""Time to 97% test accuracy, for every contender, reported as MLPerf Training does.

The closed comparison: every contender runs exactly the same recipe, ``fast`` in
:data:`digitbench.recipe.RECIPES` (SGD, heavy-ball momentum, batch, rate, schedule,
centred inputs: ``reset(seed, mean)``), from
the same initial weights (``init_params(seed)``) over the same batches (the
permutation of each epoch drawn as ``digitbench train`` draws it). The open comparison:
each contender may use its best recipe on the same network and data (a contender's
``open_recipe``; one without runs the closed recipe again, labelled so).

The clock: training only. The test accuracy is checked :data:`CHECKS_PER_EPOCH` times
an epoch, at evenly spaced steps, off the clock (the evaluation time is recorded apart);
the time is the training clock at the first check at or above the target. Before the
clock starts, each distinct chunk length is run once on throwaway weights, so that
compiling a new shape (XLA, inductor) is never on the clock.

Five seeds; the fastest and slowest are dropped and the mean of the other three is the
result, with their spread (MLPerf Training's rule for its image benchmarks). A seed that
never reaches the target counts as the slowest; with two or more such seeds there is no
result.
"""

import dataclasses
import math
import statistics
import time

import numpy as np

from .pixels import mean_image
from .sgd import chunk_bounds
from .recipe import RECIPES, THROUGHPUT, learning_rates

TARGET = 0.97
CHECKS_PER_EPOCH = 20
SEEDS = (0, 1, 2, 3, 4)
#: The recipe fields every contender implements; a recipe needing more cannot be closed.
RECIPE_FIELDS = ("epochs", "batch_size", "lr", "momentum", "schedule", "decay", "center")
#: Fields a recipe may carry that change nothing in the training arithmetic.
DESCRIPTIVE_FIELDS = ("name", "description", "doc", "notes", "target_accuracy")


def closed_recipe(name="fast"):
    """The named recipe of :mod:`digitbench.recipe` as a plain dict of :data:`RECIPE_FIELDS`.

    Raises
    ------
    ValueError when the recipe uses something the contenders do not implement (another
    momentum, extra fields such as Nesterov or input standardization).
    """
    recipe = RECIPES[name]
    values = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) else dict(recipe)
    extra = {k: v for k, v in values.items()
             if k not in RECIPE_FIELDS + DESCRIPTIVE_FIELDS and v not in (None, False, 0, "", "float32")}
    if extra or values.get("momentum") != THROUGHPUT.momentum:
        raise ValueError(f"recipe {name!r} needs {extra or {'momentum': values.get('momentum')}}, "
                         "which the peers do not implement")
    return {k: values[k] for k in RECIPE_FIELDS} | {"name": name}


def chunks(steps_per_epoch, checks=CHECKS_PER_EPOCH):
    """(first, last) steps between checks: ``checks`` evenly spaced chunks of one epoch.

    >>> chunks(10, 4)
    [(0, 3), (3, 5), (5, 8), (8, 10)]
    """
    return chunk_bounds(steps_per_epoch, [math.ceil(k * steps_per_epoch / checks) for k in range(1, checks)])


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
    if not recipe.get("center"):
        mean = None
    elif mean is None:
        mean = mean_image(data.train_images)
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


def compare(contender, data, recipe, seeds=SEEDS, target=TARGET, checks=CHECKS_PER_EPOCH):
    """Closed and open time to ``target`` for one prepared contender (a JSON-able dict)."""
    mean = mean_image(data.train_images)  # once for every centred run (15 ms each)
    closed_runs = [run_to_target(contender, data, recipe, s, target, checks, mean) for s in seeds]
    result = {"closed": summarize(closed_runs) | {"recipe": recipe["name"], "runs": closed_runs}}
    open_recipe = getattr(contender, "open_recipe", None)
    if open_recipe is None:
        result["open"] = result["closed"] | {"recipe": f"{recipe['name']} (closed recipe: no better one given)"}
    else:
        open_runs = [run_to_target(contender, data, open_recipe, s, target, checks, mean) for s in seeds]
        result["open"] = summarize(open_runs) | {"recipe": open_recipe["name"], "runs": open_runs}
    return result
