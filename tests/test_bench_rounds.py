"""bench's repetitions: interleaved across contenders, medians and spreads, paired ratios."""

import numpy as np
import pytest

from digitbench import bench, bench_rounds
from digitbench.datasets import MnistData


class Fake:
    """A contender that logs each timed call and advances a fake clock by its own step time."""

    kind, slow, version, threads_note = "peer", False, None, ""

    def __init__(self, name, log, clock, seconds, fail=False):
        self.name, self.log, self.clock, self.seconds, self.fail = name, log, clock, seconds, fail
        self.test = np.zeros((10, 784), np.float32)

    def train(self, order, lrs=None):
        if self.fail:
            raise RuntimeError("no compiler\nmore")
        self.log.append(("train", self.name))
        self.clock.now += self.seconds.pop(0) if self.seconds else 0.0

    def predict(self, X):
        self.log.append(("predict", self.name))
        self.clock.now += 0.5
        return np.zeros(len(X), np.int64)


class Clock:
    now = 0.0

    def perf_counter(self):
        return self.now


def tiny():
    rng = np.random.default_rng(0)
    return MnistData(rng.integers(0, 256, (64, 784), dtype=np.uint8), rng.integers(0, 10, 64),
                     rng.integers(0, 256, (10, 784), dtype=np.uint8), rng.integers(0, 10, 10))


def test_repetitions_are_interleaved_and_reported_as_medians(monkeypatch):
    clock, log = Clock(), []
    monkeypatch.setattr(bench, "time", clock)  # bench.timed's clock
    monkeypatch.setattr(bench_rounds, "time", clock)
    a = Fake("a", log, clock, [9.0, 1.0, 3.0, 2.0])  # first call, then three timed epochs
    b = Fake("b", log, clock, [9.0, 2.0, 6.0, 4.0])
    broken = Fake("broken", log, clock, [], fail=True)
    records = bench_rounds.measure_all([a, broken, b], tiny(), batch_size=8, repeats=3, quick=True)
    trains = [name for what, name in log if what == "train"]
    assert trains == ["a", "b"] * 4  # A B A B ...: the failed peer dropped out after its first call
    ra, rbroken, rb = records
    assert rbroken["error"] == "RuntimeError: no compiler"
    assert ra["train_seconds"] == [1.0, 3.0, 2.0] and ra["train_seconds_spread"] == [1.0, 3.0]
    assert ra["train_samples_per_s"] == pytest.approx(64 / 2.0)  # the median, not the best
    assert rb["train_samples_per_s_reps"] == pytest.approx([32.0, 64 / 6, 16.0])
    # the ratio of a over b, paired by round: in every round a was twice as fast
    bench.add_derived(ra, 100.0, rb)
    assert ra["train_vs_pytorch"] == pytest.approx(2.0)
    assert ra["train_vs_pytorch_ci"] == pytest.approx((2.0, 2.0))


def test_a_digitbench_backend_that_fails_is_raised():
    clock, log = Clock(), []
    with pytest.raises(RuntimeError):
        broken = Fake("numpy", log, clock, [], fail=True)
        broken.kind = "digitbench"
        bench_rounds.measure_all([broken], tiny(), batch_size=8, repeats=2, quick=True)
