"""What the speed buys: seconds of training to 97% test accuracy, and the seed recipe's test error.

Time to 97% is defined as ``digitbench bench`` defines it: a fixed-length recipe
(``fast-fixed``, chosen on held-out training images) trained to its end, the clock on
training only, the test set evaluated once at the end (:class:`FixedRecipe`; its mean
accuracy over 20 seeds is on docs/results.md). The older classes stop at the first check
at or above 97% (checked every 235 steps): kept, as secondary figures, so that their
history stays comparable.

Recipes, initial weights, epoch order and check frequency are frozen in recipes.py, so
only the backend changes between commits. Both need the real MNIST files (see
common.py); without them they are skipped. Lower is better for every figure here.
"""

from .common import FAST, PROFILES, TRAINABLE, backend_or_skip, mnist
from .recipes import RECIPES, train

TARGET = 0.97
#: Epochs of the seed recipe in the fast profile (30 in the full one).
SEED_EPOCHS_FAST = 3


def _data_or_skip():
    data = mnist()
    if data is None:
        raise NotImplementedError("the real MNIST files were not found (set DIGITBENCH_DATA)")
    return data


class _OnRealData:
    """One of :data:`RECIPES` (``recipe``) on every trainable backend and the real MNIST files."""

    params = (PROFILES, TRAINABLE)
    param_names = ("profile", "backend")
    timeout = 900
    recipe = None

    def setup(self, profile, backend):
        self.data = _data_or_skip()
        self.backend = backend_or_skip(backend)


class FixedRecipe(_OnRealData):
    """``RECIPES["fast-fixed"]`` trained to its end (seed 0): training seconds, then test error.

    Commits before centred inputs are skipped."""

    recipe = "fast-fixed"

    def track_fixed_recipe_train_seconds(self, profile, backend):
        return train(self.backend, self.data, RECIPES[self.recipe])["train_seconds"]

    track_fixed_recipe_train_seconds.unit = "seconds"

    def track_fixed_recipe_test_error(self, profile, backend):
        """Misclassified test images in percent after the whole recipe, evaluated once."""
        return round(100 * (1 - train(self.backend, self.data, RECIPES[self.recipe])["test_accuracy"]), 2)

    track_fixed_recipe_test_error.unit = "%"


class SecondsToTarget(_OnRealData):
    """Secondary: ``RECIPES["fast"]`` until the test accuracy first reaches 97% (checked every 235 steps)."""

    recipe = "fast"

    def track_seconds_to_97_percent(self, profile, backend):
        result = train(self.backend, self.data, RECIPES[self.recipe], target=TARGET)
        return float("nan") if result["seconds_to_target"] is None else result["seconds_to_target"]

    track_seconds_to_97_percent.unit = "seconds"


class SecondsToTargetCentred(SecondsToTarget):
    """Secondary: ``RECIPES["fast-centred"]`` (appended 2026-11) until the first check at 97%.

    Commits before centred inputs are skipped."""

    recipe = "fast-centred"


class SeedRecipe:
    """The seed recipe (30 epochs; 3 in the fast profile), trained once per backend in ``setup_cache``."""

    params = (PROFILES, TRAINABLE)
    param_names = ("profile", "backend")

    def setup_cache(self):
        results = {}
        for name in TRAINABLE:
            try:
                backend = backend_or_skip(name)
                results[name] = train(backend, _data_or_skip(), RECIPES["seed"],
                                      epochs=SEED_EPOCHS_FAST if FAST else None)
            except NotImplementedError as e:  # skipped in setup: setup_cache cannot skip
                results[name] = {"skip": str(e)}
        return results

    setup_cache.timeout = 3600

    def setup(self, cache, profile, backend):
        if "skip" in cache[backend]:
            raise NotImplementedError(cache[backend]["skip"])

    def track_seed_recipe_test_error(self, cache, profile, backend):
        """Misclassified test images in percent, rounded to 0.01 (lower is better)."""
        return round(100 * (1 - cache[backend]["test_accuracy"]), 2)

    track_seed_recipe_test_error.unit = "%"

    def track_seed_recipe_train_seconds(self, cache, profile, backend):
        return cache[backend]["train_seconds"]

    track_seed_recipe_train_seconds.unit = "seconds"
