"""What the experiments share: data subsets, a loss-recording backend, tables, figures.

Every experiment module has a function ``compute(args, data, backend)`` returning a
:class:`Results`: the text to print (a short table), the JSON-able record for
``--json``, and what its figure needs. Nothing is drawn there: ``digitbench experiment``
then draws the figure from the Results with ``digitbench.plots.plot_experiment_NAME``
and saves it as PNG, so the tests can check the numbers without matplotlib.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from ..datasets import MnistData, load_mnist
from ..errors import TrainingDiverged
from ..params import Params
from ..train import train


def load_subset(data_dir, subset, test_subset=None, dataset="mnist"):
    """MNIST (or ``dataset``) with only the first ``subset`` training images (and ``test_subset`` test images).

    The first N rows of the training file are as varied as a random sample (the file is
    not sorted by label), and taking them keeps runs identical across machines.
    """
    data = load_mnist(data_dir, dataset, progress=False)
    train, test = slice(subset), slice(test_subset)
    return MnistData(data.train_images[train], data.train_labels[train], data.test_images[test], data.test_labels[test])


class RecordingBackend:
    """Wraps a backend and keeps the loss of every SGD step that ``train`` runs.

    :func:`digitbench.train.train` reports one mean loss per epoch; the experiments
    want the curve step by step. Everything else is passed through untouched, so a
    compiled ``train_batches`` (numba) stays compiled.
    """

    def __init__(self, backend):
        self.inner = backend
        self.name = backend.name
        self.losses = []

    def train_batches(self, *args, **kwargs):
        losses = self.inner.train_batches(*args, **kwargs)
        self.losses.extend(np.asarray(losses, dtype=np.float64).tolist())
        return losses

    def __getattr__(self, name):  # forward, predict, warmup, steps_per_call, ...
        return getattr(self.inner, name)




def run_training(backend, data, **recipe):
    """Train with :func:`digitbench.train.train`, catching divergence.

    Returns
    -------
    dict with ``losses`` (per step, NaN included when it diverged), ``history`` (per
    epoch), ``test_accuracy`` (None when it diverged), ``params`` (None when it
    diverged), ``seconds`` (wall clock, evaluation included), and ``diverged``: None, or
    a dict ``{"epoch", "step", "steps_per_epoch", "message"}`` taken from the
    :class:`~digitbench.errors.TrainingDiverged` that ``train`` raised.
    """
    recorder = RecordingBackend(backend)
    history = []
    t0 = time.perf_counter()
    try:
        result = train(recorder, data, on_epoch=history.append, **recipe)
    except TrainingDiverged as e:
        return {"losses": recorder.losses, "history": history, "test_accuracy": None, "params": None,
                "seconds": time.perf_counter() - t0,
                "diverged": {"epoch": e.epoch, "step": e.step, "steps_per_epoch": e.steps_per_epoch,
                             "message": str(e)}}
    return {"losses": recorder.losses, "history": result.history, "test_accuracy": result.test_accuracy,
            "params": result.params, "seconds": time.perf_counter() - t0, "diverged": None}


def recipe_overrides(args):
    """The recipe fields the command line sets on top of a named recipe: ``momentum``
    when ``--momentum`` is given (``args.momentum`` not None), else nothing."""
    momentum = getattr(args, "momentum", None)
    return {} if momentum is None else {"momentum": momentum}


@dataclass
class Results:
    """What an experiment computed, before anything is drawn.

    ``lines``: the table to print; ``record``: the JSON-able numbers (``--json``, and
    what the tests check); ``plot``: the arrays and settings its figure is drawn from
    (by :mod:`digitbench.plots`, ``plot_experiment_*``).
    """

    lines: list
    record: dict
    plot: dict = field(default_factory=dict)


def scaled_params(params, factor, dtype=None):
    """``params`` with every weight matrix multiplied by ``factor`` (biases kept)."""
    return Params(*(np.array(a * factor if a.ndim == 2 else a, dtype=dtype or a.dtype) for a in params))


def format_table(headers, rows):
    """Rows of strings as a plain-text table with aligned columns (first left, rest right)."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percent(x):
    return "-" if x is None else f"{100 * x:.2f}%"
