"""Timing prepared contenders in rounds: each repetition of every contender in turn.

What is timed, and on which samples, is :mod:`digitbench.bench`'s (its module docstring);
this module runs the repetitions interleaved across contenders (A B C A B C ...) and
makes each contender's record: medians, spreads and every repetition, paired by round
for :func:`digitbench.stats.bootstrap_ratio`.
"""

import statistics
import time

import numpy as np

from .bench import NAIVE_BATCHES, NAIVE_INFER_SAMPLES, QUICK_TRAIN_SAMPLES, TRAIN_SAMPLES, one_line, timed


def measure(contender, data, *, batch_size, repeats, quick, seed=0, samples=None):
    """Time one prepared contender: :func:`measure_all` of it alone; its record."""
    return measure_all([contender], data, batch_size=batch_size, repeats=repeats, quick=quick, seed=seed,
                       samples=samples)[0]


def measure_all(contenders, data, *, batch_size, repeats, quick, seed=0, samples=None):
    """Time prepared contenders, their repetitions interleaved; one JSON-able dict each.

    Every round times each contender once, in turn (A B C A B C ...), so that a slow
    stretch of the machine falls on all of them and repetition ``i`` of two contenders
    form a pair (:func:`digitbench.stats.bootstrap_ratio`). Training runs over a fresh
    seeded permutation each round: the first, untimed for throughput
    (``first_call_seconds``: compiling new shapes shows here), then ``repeats`` rounds; the
    same for inference. A figure is the median of its repetitions (``*_spread``: min, max);
    with fewer samples than an epoch, ``epoch_seconds`` is extrapolated (and says so).
    ``samples`` (None: an epoch, or 4,096 when ``quick``) caps the training samples and
    the test images of a repetition (``bench --samples``: a small run, extrapolated).
    A peer that fails becomes ``{"name", "kind", "version", "error"}``; digitbench's raise.
    """
    plans = {id(c): _plan(c, data, batch_size, repeats, quick, seed, samples) for c in contenders}
    failed = {}

    def each(step):
        for c in contenders:
            if id(c) not in failed:
                try:
                    step(c, plans[id(c)])
                except Exception as e:  # a peer failing on this machine is a finding
                    if c.kind != "peer":
                        raise
                    failed[id(c)] = {"name": c.name, "kind": c.kind, "version": c.version, "error": one_line(e)}

    each(lambda c, p: p.update(first_call=timed(c.train, p["orders"][0])))
    for i in range(1, repeats + 1):
        each(lambda c, p: p["train"].append(timed(c.train, p["orders"][i])))
    each(lambda c, p: c.predict(c.test[:p["n_infer"]]))  # new shapes compile here, off the clock
    for _ in range(repeats):
        each(lambda c, p: p["infer"].append(timed(c.predict, c.test[:p["n_infer"]])))
    each(lambda c, p: p.update(latencies=_latencies(c, c.test[:1])))
    return [failed.get(id(c)) or _record(c, plans[id(c)]) for c in contenders]


def _plan(contender, data, batch_size, repeats, quick, seed, samples=None):
    """What one contender is timed on: sample counts and the permutations of each round."""
    rng = np.random.default_rng(seed)
    n_train = samples or (TRAIN_SAMPLES if not quick else QUICK_TRAIN_SAMPLES)
    n_infer = min(len(data.test_images), samples or len(data.test_images))
    if contender.slow:
        n_train = min(n_train, NAIVE_BATCHES * batch_size if not quick else batch_size)
        n_infer = min(n_infer, NAIVE_INFER_SAMPLES if not quick else 20)
    n_train = min(n_train, len(data.train_images))
    orders = [rng.permutation(len(data.train_images))[:n_train].astype(np.int64) for _ in range(repeats + 1)]
    nonzero = np.count_nonzero(data.train_images, axis=1)
    return dict(n_train=n_train, n_infer=n_infer, orders=orders, train=[], infer=[],
                nonzero=int(sum(nonzero[order].sum() for order in orders[1:])))


def _record(contender, plan):
    """A measured contender's record: medians, spreads and every repetition (seconds)."""
    n_train, n_infer = plan["n_train"], plan["n_infer"]
    train_median, infer_median = statistics.median(plan["train"]), statistics.median(plan["infer"])
    return {
        "name": contender.name,
        "kind": contender.kind,
        "train_samples_timed": n_train,
        "train_seconds": plan["train"],
        "train_seconds_spread": [min(plan["train"]), max(plan["train"])],
        "first_call_seconds": plan["first_call"],
        "train_samples_per_s": n_train / train_median,
        "train_samples_per_s_reps": [n_train / t for t in plan["train"]],
        "epoch_seconds": TRAIN_SAMPLES * train_median / n_train,
        "epoch_seconds_reps": [TRAIN_SAMPLES * t / n_train for t in plan["train"]],
        "epoch_extrapolated": n_train < TRAIN_SAMPLES,
        "train_nonzero_pixels": plan["nonzero"],
        "sparse_input": getattr(contender, "sparse_input", False),
        "infer_samples_timed": n_infer,
        "infer_seconds": plan["infer"],
        "infer_samples_per_s": n_infer / infer_median,
        "infer_samples_per_s_reps": [n_infer / t for t in plan["infer"]],
        "latency_s": statistics.median(plan["latencies"]),
        "latency_calls": len(plan["latencies"]),
    }


def _latencies(contender, x, budget=0.3, max_calls=200):
    """Times of single-image predictions: up to ``max_calls`` or ``budget`` seconds."""
    times = []
    start = time.perf_counter()
    while len(times) < max_calls and (len(times) < 3 or time.perf_counter() - start < budget):
        times.append(timed(contender.predict, x))
    return times
