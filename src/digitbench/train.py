"""Mini-batch SGD over MNIST: the training loop around one state object.

:func:`train` is a short loop over named steps. Each epoch it draws a permutation from a
seeded generator and hands the backend chunks of steps (:mod:`digitbench.sgd`); after
each chunk, outside the training clock, it checks the losses for NaN or infinity, and
with a target accuracy it measures the test accuracy (``TARGET_CHECKS_PER_EPOCH`` times
an epoch, at evenly spaced steps); at the end of an epoch it records the loss, the test
accuracy on all test images, the train accuracy on the first ``TRAIN_EVAL_SAMPLE``
training images and, given a held-out ``validation`` set, its accuracy (target checks
then use it, not the test set), and refuses outputs that are not finite (a last step that diverged
shows there). Same seed, same backend, same machine: identical weights.

Everything that changes during a run is one :class:`TrainState`; its copy, taken at
the start of each chunk, is the checkpoint that Ctrl-C (or SIGTERM, see
:class:`Terminated`) leaves in :class:`TrainingInterrupted`, and resuming from it gives
bit-identical weights on a deterministic backend.
"""

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .backends import DEFAULT_BACKEND, backend_for
from .datasets import load_mnist
from .errors import TrainingDiverged, UsageError
from .model import Model
from .model_io import load_checkpoint, save_checkpoint, save_model
from .networks import get_network, init_params, network_of
from .params import Params, copy_params, zeros_like_params
from .kernels.base import center_start
from .pixels import mean_image, scale_pixels
from .recipe import RECIPES, SCHEDULES, Recipe, learning_rates, run_recipe  # noqa: F401  (re-exported)
from .schema import check_resume
from .sgd import chunk_bounds, run_chunk
from .threads import RunThreads, inference_threads

#: How often per epoch the test accuracy is checked against the target; without a
#: target, chunks still end every quarter epoch (where Ctrl-C rolls back to).
TARGET_CHECKS_PER_EPOCH = 10
CHECKPOINTS_PER_EPOCH = 4
#: Train accuracy is measured on this many training images (the first ones).
TRAIN_EVAL_SAMPLE = 10_000


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it is; :meth:`copy` is a checkpoint.

    ``rng_state`` is the generator's state before this epoch's permutation: resuming
    draws the permutation again, so the remaining steps see the same batches.
    ``epoch_losses`` holds this epoch's losses so far, one float64 array per chunk.
    """

    params: Params  # or the network's own type, e.g. CnnParams
    velocity: Params  # of the params' type
    recipe: Recipe
    n_train: int
    backend: str
    rng_state: dict
    epoch: int = 1
    step: int = 0
    epoch_losses: list = field(default_factory=list)
    train_clock: float = 0.0  # seconds of optimisation only
    eval_clock: float = 0.0  # seconds of evaluation between chunks and after epochs
    epoch_start_clock: float = 0.0
    reached_at: float = None  # training clock when the target was first reached
    test_acc: float = None
    history: list = field(default_factory=list)  # one dict per finished epoch

    @property
    def steps_per_epoch(self):
        return math.ceil(self.n_train / self.recipe.batch_size)

    def losses(self):
        """This epoch's losses so far, shape (step,), float64."""
        return np.concatenate([np.zeros(0), *self.epoch_losses])

    def copy(self):
        return TrainState(copy_params(self.params), copy_params(self.velocity), self.recipe, self.n_train,
                          self.backend, self.rng_state, self.epoch, self.step, [self.losses()], self.train_clock,
                          self.eval_clock, self.epoch_start_clock, self.reached_at, self.test_acc,
                          [dict(r) for r in self.history])

    def meta(self):
        """The JSON-able part, as a checkpoint file's metadata holds it."""
        keys = ("epoch", "step", "rng_state", "train_clock", "eval_clock", "epoch_start_clock", "reached_at",
                "test_acc", "history", "n_train", "backend")
        return {**{k: getattr(self, k) for k in keys}, "steps_per_epoch": self.steps_per_epoch,
                "config": self.recipe.as_dict()}

    def save(self, path, **extra):
        """Write the checkpoint file (:func:`digitbench.model_io.save_checkpoint`)."""
        return save_checkpoint(path, self.params, self.velocity, self.losses(), **self.meta(), **extra)

    @classmethod
    def load(cls, path):
        """(TrainState, the file's metadata) from a checkpoint file, every field checked."""
        params, velocity, losses, meta = load_checkpoint(path)
        keys = ("epoch", "step", "rng_state", "train_clock", "eval_clock", "epoch_start_clock", "reached_at",
                "test_acc", "history")
        state = cls(params, velocity, Recipe(**meta["config"]), meta["n_train"], meta["backend"],
                    epoch_losses=[losses], **{k: meta[k] for k in keys if k != "rng_state"},
                    rng_state=meta["rng_state"])
        return state, meta


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during :func:`train`; ``.checkpoint`` is the TrainState to resume.

    ``.cause`` is the KeyboardInterrupt (or :class:`Terminated`) that stopped it. A
    KeyboardInterrupt itself, so code that does not know it still stops as on any Ctrl-C.
    """

    def __init__(self, checkpoint, cause=None):
        super().__init__()
        self.checkpoint, self.cause = checkpoint, cause


@dataclass
class TrainResult:
    params: Params  # the trained model
    backend: str
    epochs_run: int
    train_seconds: float  # optimisation only: evaluation and checks excluded
    eval_seconds: float  # the evaluations between chunks
    test_accuracy: float
    seconds_to_target: float = None  # training clock when the target was first reached
    warmup_seconds: float = 0.0  # compiling or loading jitted kernels, before the clock starts
    history: list = field(default_factory=list)  # one dict per epoch
    threads: dict = None  # RunThreads.choice after the run: the thread count and why
    config: dict = field(default_factory=dict)  # the Recipe, as a dict
    validation_images: int = 0  # images held out for validation (history's validation_accuracy)

    def summary(self):
        """The JSON-able record that ``--json`` prints."""
        return {
            "backend": self.backend,
            "epochs_run": self.epochs_run,
            "test_accuracy": self.test_accuracy,
            "train_seconds": round(self.train_seconds, 4),
            "eval_seconds": round(self.eval_seconds, 4),
            "warmup_seconds": round(self.warmup_seconds, 4),
            "seconds_to_target": None if self.seconds_to_target is None else round(self.seconds_to_target, 4),
            "threads": self.threads,
            "validation_images": self.validation_images,
            "validation_accuracy": self.history[-1].get("validation_accuracy") if self.history else None,
            **{k: v for k, v in self.config.items() if k != "backend"},
            "history": self.history,
        }

    @property
    def model(self):
        """The trained network as a :class:`~digitbench.model.Model`, which predicts from
        image files, PIL images and arrays (``result.model.predict([...])``)."""
        return Model(self.params, {"network": self.config.get("network", "mlp"), "backend": self.backend,
                                   "test_accuracy": self.test_accuracy,
                                   "config": self.config, "history": self.history})

    def save(self, path, **meta):
        """Save the trained model with its run's metadata (and ``meta``) to ``path``."""
        return save_model(path, self.params, backend=self.backend, seed=self.config.get("seed"),
                          test_accuracy=self.test_accuracy, config=self.config, history=self.history, **meta)


def accuracy(backend, params, images, labels):
    """Fraction of ``images`` (n, 784; uint8, or floats in [0, 1]) classified right."""
    with inference_threads(backend) as threads:
        return float(np.mean(backend.predict(params, images, threads=threads) == labels))


@contextlib.contextmanager
def progress_bar(enabled, total, initial, description):
    """A tqdm bar of ``total`` steps on standard error (or, disabled, a stand-in), closed
    however the block ends. Enabled, it shows only on a terminal (tqdm's ``disable=None``)."""
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc=description, unit="batch", leave=False, disable=None)
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    def update(self, steps):
        pass

    def set_description(self, text):
        pass

    def clear(self):
        pass

    def refresh(self):
        pass


def train(backend=DEFAULT_BACKEND, data=None, *, recipe=None, params=None, progress=True, on_epoch=None,
          resume=None, validation=None, **settings):
    """Train the network with mini-batch SGD; see the module docstring.

    Parameters
    ----------
    backend : Backend or str, e.g. "numba" (see :func:`digitbench.get_backend`); it runs the
        recipe's network (a backend object for another network stands for its name)
    data : MnistData (uint8 images (n, 784), integer labels), optional; default:
        :func:`digitbench.load_mnist`'s MNIST
    recipe : Recipe or its name ("seed", "fast", "cnn"), optional; default: the seed recipe,
        or with ``network="cnn"`` alone the cnn recipe; ``settings`` on top
    settings : Recipe's fields (epochs, batch_size, lr, momentum, schedule, decay, center,
        network, seed, dtype, target_accuracy, stop_at_target)
    params : Params or CnnParams, optional starting point (default: the network's
        ``init_params(network, seed, dtype)`` of :mod:`digitbench.networks`); its type
        sets the network
    progress : bool, show one tqdm bar for the whole run (steps done, time left) on
        standard error, moved after each chunk of steps (every backend), shown only when
        standard error is a terminal (default True; False: no bar)
    on_epoch : callable(dict), optional, called with each epoch's history record
    resume : TrainState, optional; continue that run (its recipe must equal this one)
    validation : (images of shape (n, 784) uint8, labels of shape (n,)), optional: a
        held-out set (:func:`digitbench.datasets.split_validation`) whose accuracy each
        epoch records as ``validation_accuracy``; the target accuracy is then checked on
        it, and the test set is only reported

    Returns
    -------
    TrainResult, with the trained model in ``.params``

    Raises
    ------
    TrainingDiverged when a loss or an output is NaN or infinite; TrainingInterrupted on
    Ctrl-C or SIGTERM; UsageError for settings that make no sense.
    """
    recipe = _recipe(recipe, settings, params, resume)
    backend = backend_for(backend, recipe.network)
    data = load_mnist(progress=progress) if data is None else data
    run = _Run(backend, data, recipe, validation)
    state = run.resume(resume) if resume is not None else run.start(params)
    warmup_seconds = backend.warmup((recipe.float_type,))  # compile or load kernels, off the clock
    saved = None  # the state at the last chunk boundary: what an interrupt rolls back to
    try:
        with progress_bar(progress, run.steps_per_epoch * recipe.epochs,
                          run.steps_per_epoch * (state.epoch - 1) + state.step, backend.name) as bar:
            while state.epoch <= recipe.epochs:
                order, next_rng_state = run.permutation(state)
                bar.set_description(f"epoch {state.epoch}/{recipe.epochs} [{backend.name}]")
                for first, last in run.chunks_from(state.step):
                    saved = state.copy()
                    run.chunk(state, order, first, last)
                    bar.update(last - first)
                    if run.check_target(state, last):
                        break
                bar.clear()  # the epoch's line (on_epoch) prints where the bar was
                run.end_epoch(state, next_rng_state, on_epoch)
                bar.refresh()
                if recipe.stop_at_target and state.reached_at is not None:
                    break
    except KeyboardInterrupt as stop:
        if saved is None:  # before the first step: nothing to save but the start
            raise
        raise TrainingInterrupted(saved, stop) from None
    return run.result(state, warmup_seconds)


def _recipe(recipe, settings, params, resume):
    """The run's Recipe (:func:`~digitbench.recipe.run_recipe`): the checkpoint's when
    resuming without settings; the network and dtype of ``params`` when given."""
    if recipe is None and not settings and resume is not None:
        recipe = resume.recipe
    if params is None:
        return run_recipe(recipe, settings)
    return run_recipe(recipe, settings, network_of(params).name, params.W1.dtype.name)


class _Run:
    """What stays fixed during a run, and the named steps of :func:`train`'s loop."""

    def __init__(self, backend, data, recipe, validation=None):
        train_images, train_labels, test_images, test_labels = data
        self.backend, self.recipe, self.n = backend, recipe, len(train_images)
        if self.n == 0:
            raise UsageError("the training set is empty")
        if recipe.batch_size > self.n:
            raise UsageError(f"--batch-size {recipe.batch_size} is more than the {self.n} training images")
        self.images = train_images
        self.labels = np.ascontiguousarray(train_labels, dtype=np.int64)
        self.steps_per_epoch = spe = math.ceil(self.n / recipe.batch_size)
        checks = TARGET_CHECKS_PER_EPOCH if recipe.target_accuracy is not None else CHECKPOINTS_PER_EPOCH
        self.check_steps = {math.ceil(k * spe / checks) for k in range(1, checks + 1)}
        quarters = {math.ceil(k * spe / CHECKPOINTS_PER_EPOCH) for k in range(1, CHECKPOINTS_PER_EPOCH + 1)}
        self.chunks = chunk_bounds(spe, self.check_steps | quarters, backend.steps_per_call)
        dtype = recipe.float_type  # the sets evaluated every epoch, scaled once
        self.test = scale_pixels(test_images, dtype), np.asarray(test_labels, dtype=np.int64)
        self.sample = scale_pixels(train_images[:TRAIN_EVAL_SAMPLE], dtype), self.labels[:TRAIN_EVAL_SAMPLE]
        self.mean = mean_image(train_images, dtype) if recipe.center else None
        self.validation = None if validation is None else (
            scale_pixels(validation[0], dtype), np.asarray(validation[1], dtype=np.int64))
        self.threads = RunThreads(backend)  # this run's thread choice and buffers

    def start(self, params):
        """The state before the first step: ``params``, or ``init_params(seed)``, whose
        zero first bias is the centred network's when the recipe centres (see
        :func:`~digitbench.kernels.base.center_start`)."""
        if params is not None:
            params = copy_params(params)
        else:
            params = init_params(get_network(self.recipe.network), self.recipe.seed, self.recipe.float_type)
            if self.mean is not None:
                params = center_start(params, self.mean)
        rng_state = np.random.default_rng(self.recipe.seed).bit_generator.state
        return TrainState(params, zeros_like_params(params), self.recipe, self.n, self.backend.name, rng_state)

    def resume(self, checkpoint):
        check_resume(checkpoint, self.recipe, self.n, self.backend, {first for first, _ in self.chunks})
        return checkpoint.copy()  # the caller's checkpoint stays as it was

    def permutation(self, state):
        """This epoch's order of the training rows, and the generator's state after it."""
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        return rng.permutation(self.n).astype(np.int64), rng.bit_generator.state

    def chunks_from(self, step):
        return [(first, last) for first, last in self.chunks if first >= step]

    def chunk(self, state, order, first, last):
        """Run steps first..last-1 on the training clock; TrainingDiverged on a non-finite loss."""
        lrs = self.recipe.learning_rates(self.steps_per_epoch, state.epoch, first, last)
        t0 = time.perf_counter()
        losses = run_chunk(self.threads, state.params, state.velocity, self.images, self.labels, order, first, last,
                           self.recipe.batch_size, lrs, self.recipe.momentum, self.mean)
        state.train_clock += time.perf_counter() - t0
        state.epoch_losses.append(losses)
        state.step = last
        if not np.all(np.isfinite(losses)):
            bad = int(np.argmin(np.isfinite(losses)))
            raise self._diverged(state, f"the loss became {losses[bad]}", first + bad + 1, lrs[bad], losses[bad])

    def check_target(self, state, last):
        """Measure the test accuracy at a check step; True when the run should stop now."""
        target = self.recipe.target_accuracy
        if target is None or state.reached_at is not None or last not in self.check_steps:
            return False
        checked = self._accuracy(state, *(self.validation or self.test))  # the validation set when there is one
        if self.validation is None:
            state.test_acc = checked
        if checked >= target:
            state.reached_at = state.train_clock
        return self.recipe.stop_at_target and state.reached_at is not None

    def end_epoch(self, state, next_rng_state, on_epoch):
        """Record the epoch (loss, accuracies, seconds, lr) and move the state to the next."""
        state.test_acc = self._accuracy(state, *self.test)
        record = {
            "epoch": state.epoch,
            "loss": float(np.mean(state.losses())),
            "train_accuracy": self._accuracy(state, *self.sample),
            "test_accuracy": state.test_acc,
            **({} if self.validation is None else {"validation_accuracy": self._accuracy(state, *self.validation)}),
            "seconds": state.train_clock - state.epoch_start_clock,
            "lr": float(self.recipe.learning_rates(self.steps_per_epoch, state.epoch, 0, 1)[0]),
        }
        state.history.append(record)
        state.epoch, state.step, state.epoch_losses = state.epoch + 1, 0, []
        state.rng_state, state.epoch_start_clock = next_rng_state, state.train_clock
        if on_epoch is not None:
            on_epoch(record)

    def _accuracy(self, state, X, labels):
        """Accuracy on the evaluation clock; TrainingDiverged when an output is not finite."""
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"), inference_threads(self.backend) as threads:
            probabilities = self.backend.predict_proba(state.params, X, threads=threads)
        state.eval_clock += time.perf_counter() - t0
        if not np.isfinite(probabilities).all():
            lr = self.recipe.learning_rates(self.steps_per_epoch, state.epoch, state.step - 1, state.step)[0]
            raise self._diverged(state, "the network's outputs are not finite", state.step, lr, math.nan)
        return float(np.mean(np.argmax(probabilities, axis=1) == labels))

    def _diverged(self, state, what, step, lr, loss):
        return TrainingDiverged(
            f"training diverged: {what} in epoch {state.epoch} (step {step} of {self.steps_per_epoch}) "
            f"at learning rate {lr:g}; try a lower --lr, such as {self.recipe.lr / 10:g}",
            epoch=state.epoch, step=step, steps_per_epoch=self.steps_per_epoch, lr=float(lr), loss=float(loss))

    def result(self, state, warmup_seconds):
        return TrainResult(params=state.params, backend=self.backend.name, epochs_run=state.epoch - 1,
                           train_seconds=state.train_clock, eval_seconds=state.eval_clock,
                           test_accuracy=state.test_acc, seconds_to_target=state.reached_at,
                           warmup_seconds=warmup_seconds, history=state.history, config=self.recipe.as_dict(),
                           threads=self.threads.choice,
                           validation_images=0 if self.validation is None else len(self.validation[1]))
