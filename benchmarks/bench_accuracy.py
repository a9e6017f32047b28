"""What the speed buys: seconds of training to 97% test accuracy, and final accuracy.

Both need the real MNIST files (see common.py); without them they are skipped. Only the
optimisation is on the clock (the trainer's ``train_seconds``), not the evaluations.
"""

from .common import FAST, backend_or_skip, mnist

#: The backends fast enough to train for a few epochs.
TRAINABLE = ("numpy", "numba")
TARGET = 0.97
SEED_EPOCHS_FAST = 3


def _train(backend, recipe, **overrides):
    from digitbench.train import RECIPES, train

    if recipe not in RECIPES:
        raise NotImplementedError(f"recipe {recipe!r} is not in this commit")
    data = mnist()
    if data is None:
        raise NotImplementedError("the real MNIST files were not found (set DIGITBENCH_DATA)")
    config = dict(RECIPES[recipe], **overrides)
    return train(backend, data, seed=0, **config)


class SecondsToTarget:
    """The fast recipe (``RECIPES["fast"]``) until the test accuracy first reaches 97%."""

    params = TRAINABLE
    param_names = ("backend",)
    timeout = 900

    def setup(self, backend):
        self.backend = backend_or_skip(backend)

    def track_seconds_to_97_percent(self, backend):
        result = _train(self.backend, "fast", target_accuracy=TARGET, stop_at_target=True)
        return float("nan") if result.seconds_to_target is None else result.seconds_to_target

    track_seconds_to_97_percent.unit = "seconds"


class SeedRecipe:
    """Final test accuracy of the seed recipe (30 epochs; 3 in the fast profile).

    Trained once, in ``setup_cache``, on the default (fastest) backend of the commit.
    """

    def setup_cache(self):
        try:
            from digitbench.backends import DEFAULT_BACKEND
        except ImportError:  # older commits
            DEFAULT_BACKEND = "numpy"
        overrides = {"epochs": SEED_EPOCHS_FAST} if FAST else {}
        try:
            result = _train(backend_or_skip(DEFAULT_BACKEND), "seed", **overrides)
        except NotImplementedError as e:  # skipped in setup: setup_cache cannot skip
            return {"skip": str(e)}
        return {"backend": DEFAULT_BACKEND, "test_accuracy": result.test_accuracy,
                "train_seconds": result.train_seconds}

    setup_cache.timeout = 3600

    def setup(self, cache):
        if "skip" in cache:
            raise NotImplementedError(cache["skip"])

    def track_seed_recipe_test_accuracy(self, cache):
        return 100 * cache["test_accuracy"]

    track_seed_recipe_test_accuracy.unit = "%"

    def track_seed_recipe_train_seconds(self, cache):
        return cache["train_seconds"]

    track_seed_recipe_train_seconds.unit = "seconds"
