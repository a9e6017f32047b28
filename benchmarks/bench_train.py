"""Training: one SGD step, and one epoch (time and the epoch's own peak memory).

Both go through ``backend.train_batches``, the unit the trainer calls (scaling the
uint8 rows, forward, backward, momentum update), with momentum 0.9 as in the recipes.
An "epoch" is 60,000 samples (6,000 in the fast profile); the naive backend is never
given one. The epoch is the one benchmark that also runs on every core (parameter
``threads``), so that work a backend spreads over threads shows in the history.
"""

import math

from .common import (ALL_BACKENDS, EPOCH_SAMPLES, FAST, PROFILES, THREAD_COUNTS, TRAINABLE, backend_or_skip,
                     epoch_order, epoch_peak_mb, params, run_steps, train_arrays, zeros_like)

STEP_BATCH_SIZES = (64,) if FAST else (16, 64, 256)
EPOCH_BATCH_SIZES = (64,) if FAST else (32, 64, 256)


class TrainStep:
    """One SGD step of ``batch_size`` samples."""

    params = (PROFILES, ALL_BACKENDS, STEP_BATCH_SIZES)
    param_names = ("profile", "backend", "batch_size")

    def setup(self, profile, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)
        self.weights = params()
        self.velocity = zeros_like(self.weights)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()[:batch_size]

    def time_train_step(self, profile, backend, batch_size):
        run_steps(self.backend, self.weights, self.velocity, self.images, self.labels, self.order,
                  len(self.order), 1)


class TrainEpoch:
    """One epoch of SGD steps over a seeded permutation (no evaluation), on 1 thread or every core."""

    params = (PROFILES, TRAINABLE, EPOCH_BATCH_SIZES, THREAD_COUNTS)
    param_names = ("profile", "backend", "batch_size", "threads")
    # An epoch takes a second or less: one call per sample, a few samples.
    number = 1
    rounds = 2
    repeat = (2, 5, 60.0)
    warmup_time = 0
    timeout = 900

    def setup(self, profile, backend, batch_size, threads):
        self.backend = backend_or_skip(backend, threads=threads)
        self.weights = params()
        self.velocity = zeros_like(self.weights)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()
        self.batch_size = batch_size
        self.steps = math.ceil(EPOCH_SAMPLES / batch_size)

    def _epoch(self):
        run_steps(self.backend, self.weights, self.velocity, self.images, self.labels, self.order,
                  self.batch_size, self.steps)

    def time_train_epoch(self, profile, backend, batch_size, threads):
        self._epoch()

    def track_epoch_peak_memory(self, profile, backend, batch_size, threads):
        """Peak resident memory the epoch adds above the post-setup baseline (not loading, not compiling)."""
        return epoch_peak_mb(self._epoch)

    track_epoch_peak_memory.unit = "MB"
