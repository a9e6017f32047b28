"""A training run's settings: the frozen :class:`Recipe`, validated once, and its schedules.

Named recipes. ``seed`` is the write-up's: SGD, batch 64, learning rate 0.01 decayed as
0.01 / (1 + 0.05 * e) in epoch e = 0..29 (0.01 down to 0.0041), 30 epochs, with
heavy-ball momentum 0.9 (98.20% measured). Without momentum (``--momentum 0``) the same
schedule ends at 96.57%, and a constant 0.01 at the write-up's 97.20%; README.md has all
three measured runs. ``fast`` is the headline time-to-97% recipe, of fixed length: centred
inputs (``center``: trained as on x minus the training set's mean image, see
:mod:`digitbench.kernels.base`), 10x the seed's rate, falling linearly to a tenth of it
at 0.9 epochs (``linear-floor``, decay 1.0), then constant, batch 64, one epoch. It was
chosen by ``python tools/recipe_search.py`` on a validation split (the last 10,000
training images, trained on the first 50,000; never the test set) as the shortest of its
candidates whose mean validation accuracy over 20 seeds stays above 97.1% with 95%
confidence; docs/results.md has its test accuracy over 20 seeds. ``cnn`` trains the
convolutional network (:mod:`digitbench.networks`): SGD with momentum 0.9, batch 64,
learning rate 0.05 on a cosine schedule over the whole run, 4 epochs, on the raw pixels
(centring is the MLP's alone). ``cnn-fast`` is the CNN's time-to-99% recipe, of fixed
length: the same SGD, learning rate 0.05 falling linearly to 0 over 3 epochs, chosen
on the validation split as ``fast`` was (``tools/recipe_search.py --network cnn``; 2
epochs stayed under 99% there).
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .errors import UsageError
from .networks import NETWORKS

RECIPES = {
    "seed": dict(epochs=30, batch_size=64, lr=0.01, momentum=0.9, schedule="inverse-time", decay=0.05),
    "fast": dict(epochs=1, batch_size=64, lr=0.1, momentum=0.9, schedule="linear-floor", decay=1.0, center=True),
    "cnn": dict(epochs=4, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine", decay=0.0, center=False,
                network="cnn"),
    "cnn-fast": dict(epochs=3, batch_size=64, lr=0.05, momentum=0.9, schedule="linear", decay=0.0, network="cnn"),
}
#: The recipe a network trains with when none is named.
DEFAULT_RECIPES = {"mlp": "seed", "cnn": "cnn"}
#: The settings a named recipe fixes and the train command's options can change.
RECIPE_OPTIONS = ("epochs", "batch_size", "lr", "momentum", "schedule", "decay", "center", "network")
SCHEDULES = ("constant", "inverse-time", "linear", "linear-floor", "cosine")
#: The ``linear-floor`` schedule stops falling at this fraction of the initial rate.
LINEAR_FLOOR = 0.1
DTYPES = ("float32", "float64")
#: Each epoch adds one record to a model file's history: at most HISTORY_RECORD_CHARS
#: characters of JSON (six keys, a whole number and five floats of at most 23 characters
#: each, such as ``1.2345678901234567e-300``, and the ", " between records: 210). A
#: loader reads at most MAX_HISTORY_CHARS of history (:mod:`digitbench.schema` counts the
#: bytes of its encoding), so at most MAX_EPOCHS epochs (4,681) give a loadable model.
HISTORY_RECORD_CHARS = 210
MAX_HISTORY_CHARS = 960 * 1024
MAX_EPOCHS = MAX_HISTORY_CHARS // HISTORY_RECORD_CHARS
#: No data set here has more training images (MNIST and Fashion-MNIST: 60,000 each);
#: a batch is at most the training set, which :func:`digitbench.train.train` checks.
MAX_BATCH_SIZE = 60_000
#: Seeds are 32-bit unsigned: the range NumPy's generators and numba accept alike, and
#: a file's metadata cannot hold a 4,000-digit one.
MAX_SEED = 2 ** 32 - 1


def _whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Recipe:
    """The settings of one training run; every value is checked when it is made.

    Raises
    ------
    UsageError naming the command-line option, for any value that makes no sense.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    schedule: str = "inverse-time"
    decay: float = 0.05
    center: bool = False
    network: str = "mlp"
    seed: int = 0
    dtype: str = "float32"
    target_accuracy: float = None
    stop_at_target: bool = False

    def __post_init__(self):
        dtype = np.dtype(self.dtype).name if isinstance(self.dtype, type) else self.dtype
        object.__setattr__(self, "dtype", dtype)
        checks = [
            ("epochs", _whole(self.epochs) and 0 < self.epochs <= MAX_EPOCHS,
             f"a whole number from 1 to {MAX_EPOCHS} (a model file holds one history record an epoch)"),
            ("batch-size", _whole(self.batch_size) and 0 < self.batch_size <= MAX_BATCH_SIZE,
             f"a whole number from 1 to {MAX_BATCH_SIZE:,} (the training set)"),
            ("lr", _real(self.lr) and math.isfinite(self.lr) and self.lr > 0, "a positive number"),
            ("momentum", _real(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("decay", _real(self.decay) and math.isfinite(self.decay) and self.decay >= 0, "a non-negative number"),
            ("center", isinstance(self.center, bool), "true or false"),
            ("network", isinstance(self.network, str) and self.network in NETWORKS, f"one of {', '.join(NETWORKS)}"),
            ("seed", _whole(self.seed) and 0 <= self.seed <= MAX_SEED, "a whole number from 0 to 2**32 - 1"),
            ("dtype", dtype in DTYPES, f"one of {', '.join(DTYPES)}"),
            ("target-accuracy", self.target_accuracy is None
             or (_real(self.target_accuracy) and 0 < self.target_accuracy <= 1), "a fraction in (0, 1], e.g. 0.97"),
            ("stop-at-target", isinstance(self.stop_at_target, bool), "true or false"),
        ]
        for option, ok, what in checks:
            if not ok:
                value = getattr(self, option.replace("-", "_"))
                raise UsageError(f"--{option} must be {what}, not {value!r}")
        if self.center and self.network != "mlp":
            raise UsageError(f"--center is for the mlp only: the {self.network} trains on the raw pixels "
                             "(leave out --center, or pass --no-center)")

    @classmethod
    def named(cls, name="seed", **options):
        """The recipe ``name`` of :data:`RECIPES` with ``options`` that are not None on top."""
        if name not in RECIPES:
            raise UsageError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
        options = {k: v for k, v in options.items() if v is not None}
        settings = {**RECIPES[name], **options}
        if settings.get("center") and settings.get("network", "mlp") != "mlp" and "center" not in options:
            raise UsageError(f"the {name} recipe centres its inputs, which only the mlp does; for the "
                             f"{settings['network']} use --recipe {DEFAULT_RECIPES[settings['network']]}")
        return cls(**settings)

    def replace(self, **options):
        return dataclasses.replace(self, **options)


    def as_dict(self):
        """The JSON-able settings (a checkpoint's and a model file's ``config``)."""
        return dataclasses.asdict(self)

    @property
    def float_type(self):
        return np.dtype(self.dtype).type

    def learning_rates(self, steps_per_epoch, epoch, first, last):
        """The learning rates of steps ``first..last-1`` of ``epoch`` (from 1), float64."""
        start = (epoch - 1) * steps_per_epoch + first
        return learning_rates(self.schedule, self.lr, self.decay, self.epochs, steps_per_epoch, start, last - first)


def run_recipe(recipe=None, settings=None, network=None, dtype=None):
    """The Recipe of a training run, as :func:`digitbench.train.train` takes it.

    Parameters
    ----------
    recipe : Recipe, a name of :data:`RECIPES`, or None: the default recipe of the network
        that ``settings`` names (:data:`DEFAULT_RECIPES`: seed for the MLP, cnn for the CNN)
    settings : dict of Recipe fields set on top (None values included: they are checked)
    network, dtype : str, those of the starting parameters, if any: the network unless
        ``settings`` names one (which must then be the same), the dtype always

    Raises
    ------
    UsageError for settings that make no sense, or parameters of another network.
    """
    settings = dict(settings or {})
    if network is not None:
        settings.setdefault("network", network)
    if recipe is None:
        named = settings.get("network")
        recipe = Recipe(**{**RECIPES[DEFAULT_RECIPES.get(named, "seed") if isinstance(named, str) else "seed"],
                           **settings})
    elif isinstance(recipe, str):  # a recipe's name: "seed", "fast" or "cnn" (which says when it fits no network)
        recipe = Recipe.named(recipe, network=settings.get("network"), center=settings.get("center")).replace(
            **settings)
    else:
        recipe = recipe.replace(**settings)
    if network is not None and network != recipe.network:
        raise UsageError(f"the starting parameters are the {network}'s, but the recipe trains the {recipe.network}")
    return recipe if dtype is None or dtype == recipe.dtype else recipe.replace(dtype=dtype)


def learning_rates(schedule, lr, decay, epochs, steps_per_epoch, first=0, count=None):
    """The learning rates of the run's steps ``first .. first + count - 1`` (default: all).

    Shape (count,), float64; made a chunk at a time, so a long run never holds them all.

    - ``constant``: lr throughout.
    - ``inverse-time``: lr / (1 + decay * e) during epoch e = 0, 1, ... (per epoch).
    - ``linear``: from lr down to 0 linearly over all steps (per step).
    - ``linear-floor``: lr * max(LINEAR_FLOOR, 1 - decay * t), t the step in epochs
      (fractional): falling by ``decay`` * lr an epoch, then constant at lr / 10.
    - ``cosine``: lr * (1 + cos(pi * t / T)) / 2 at step t of the run's T steps (per
      step): lr at the first step, half of it midway, near 0 at the last.
    """
    steps = epochs * steps_per_epoch
    step = first + np.arange(steps - first if count is None else count)
    if schedule == "constant":
        return np.full(len(step), float(lr))
    if schedule == "inverse-time":
        return lr / (1.0 + decay * (step // steps_per_epoch))
    if schedule == "linear":
        return lr * (1.0 - step / steps)
    if schedule == "linear-floor":
        return lr * np.maximum(LINEAR_FLOOR, 1.0 - decay * (step / steps_per_epoch))
    if schedule == "cosine":
        return lr * (1.0 + np.cos(np.pi * step / steps)) / 2.0
    raise UsageError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")


#: What ``digitbench bench`` and its peers train with (its ``lr`` and ``momentum``): the
#: seed recipe's learning rate and momentum, at a constant rate.
THROUGHPUT = Recipe.named("seed", schedule="constant")
