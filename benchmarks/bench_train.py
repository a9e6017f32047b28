"""Training: one SGD step, and one epoch (time and peak memory), per backend and batch size.

Both go through ``backend.train_batches``, the unit the trainer calls (scaling the
uint8 rows, forward, backward, momentum update), with momentum 0.9 as in the recipes.
An "epoch" is 60,000 samples (6,000 in the fast profile); the naive backend is never
given one.
"""

import math

from .common import (ALL_BACKENDS, EPOCH_SAMPLES, FAST, backend_or_skip, epoch_order, params, run_steps,
                     train_arrays, zeros_like)

STEP_BATCH_SIZES = (64,) if FAST else (16, 64, 256)
EPOCH_BATCH_SIZES = (64,) if FAST else (32, 64, 256)


class TrainStep:
    """One SGD step of ``batch_size`` samples."""

    params = (ALL_BACKENDS, STEP_BATCH_SIZES)
    param_names = ("backend", "batch_size")

    def setup(self, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)
        self.params = params()
        self.velocity = zeros_like(self.params)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()[:batch_size]

    def time_train_step(self, backend, batch_size):
        run_steps(self.backend, self.params, self.velocity, self.images, self.labels, self.order,
                  len(self.order), 1)


class TrainEpoch:
    """One epoch of SGD steps over a seeded permutation (no evaluation)."""

    params = (ALL_BACKENDS, EPOCH_BATCH_SIZES)
    param_names = ("backend", "batch_size")
    # An epoch takes seconds: one process, one call per sample, at most 3 samples.
    number = 1
    rounds = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0
    timeout = 900

    def setup(self, backend, batch_size):
        self.backend = backend_or_skip(backend)  # None: the naive backend is skipped
        self.params = params()
        self.velocity = zeros_like(self.params)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()
        self.batch_size = batch_size
        self.steps = math.ceil(EPOCH_SAMPLES / batch_size)

    def time_train_epoch(self, backend, batch_size):
        run_steps(self.backend, self.params, self.velocity, self.images, self.labels, self.order,
                  self.batch_size, self.steps)

    def peakmem_train_epoch(self, backend, batch_size):
        run_steps(self.backend, self.params, self.velocity, self.images, self.labels, self.order,
                  self.batch_size, self.steps)
