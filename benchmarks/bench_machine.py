"""The machine's yardsticks, and each backend's speed as a ratio to them.

A slower machine (or a busier one) moves every time in the history; it also moves these
two references, which no commit can change: a float32 GEMM (NumPy's BLAS at the pinned
version) and the frozen NumPy reference step in common.py. The ratios divide a backend's
train step by the reference step measured in the same process, interleaved, so a change
in the ratio is the code's, and a change in both time series alone is the machine's.
"""

import time

import numpy as np

from . import THREADS
from .common import (PROFILES, TRAINABLE, backend_or_skip, epoch_order, hold_threads, params, reference_inputs,
                     reference_step, run_steps, train_arrays, zeros_like)

#: The GEMM: (512 x 512) @ (512 x 512) float32, 2 * 512**3 = 0.268 GFLOP.
GEMM_N = 512
GEMM_GFLOP = 2 * GEMM_N ** 3 / 1e9


class MachineReference:
    """``time_gemm_512``: GFLOP/s = 0.268 / time. ``time_reference_step``: the frozen NumPy step, batch 64."""

    params = PROFILES
    param_names = ("profile",)

    def setup(self, profile):
        rng = np.random.default_rng(0)
        self.A, self.B = (rng.standard_normal((GEMM_N, GEMM_N)).astype(np.float32) for _ in range(2))
        self.C = np.empty_like(self.A)
        self.reference = reference_inputs(64)
        hold_threads(THREADS)

    def time_gemm_512(self, profile):
        np.matmul(self.A, self.B, out=self.C)

    def time_reference_step(self, profile):
        reference_step(*self.reference)


def _seconds_per_call(fn, calls=20):
    """Mean seconds of ``calls`` calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


class RatioToReference:
    """A backend's train step (batch 64) divided by the frozen reference step: lower is better."""

    params = (PROFILES, TRAINABLE)
    param_names = ("profile", "backend")
    #: Interleaved rounds, each 20 calls of each step; the ratio is their median.
    ROUNDS = 7

    def setup(self, profile, backend):
        self.backend = backend_or_skip(backend, 64)
        self.weights = params()
        self.velocity = zeros_like(self.weights)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()[:64]
        self.reference = reference_inputs(64)

    def track_train_step_per_reference_step(self, profile, backend):
        def step():
            run_steps(self.backend, self.weights, self.velocity, self.images, self.labels, self.order, 64, 1)

        ratios = []
        for _ in range(self.ROUNDS):  # interleaved, so a burst of load hits both sides
            ours = _seconds_per_call(step)
            ref = _seconds_per_call(lambda: reference_step(*self.reference))
            ratios.append(ours / ref)
        return round(float(np.median(ratios)), 3)

    track_train_step_per_reference_step.unit = "x reference step"
