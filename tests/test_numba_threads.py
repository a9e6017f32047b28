"""The numba backend on any number of threads: same bits, and the count chosen by speed.

Thread counts: the parallel regions split their work into parts that do not depend on
the thread count and never sum across threads, so 1, 2 and 3 threads give identical bits.
2 and 3 threads run in a fresh process with ``NUMBA_NUM_THREADS`` set (numba reads it
once, at start-up; it runs on a machine of fewer cores too), so that the comparison is
never one thread against one thread.

The choice: :class:`~digitbench.thread_chooser.ThreadChooser` is fed simulated timings
(no clock involved) and a simulated count of other running processes; a training run
(:class:`~digitbench.threads.RunThreads`) is given slow threads through its
``chunk_seconds`` hook, and must fall back without changing a number. The count of
other processes is checked against a real one.
"""

import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest

from digitbench import init_params
from digitbench import thread_chooser as numba_threads
from digitbench.kernels.numba_backend import NumbaBackend
from digitbench.params import zeros_like_params
from digitbench.thread_chooser import ThreadChooser
from digitbench.threads import RunThreads

sys.path.insert(0, str(Path(__file__).parent))
from numba_cases import mnist_like, run_case  # noqa: E402

CASES = Path(__file__).parent / "numba_cases.py"


def _differences(a, b):
    """Where a and b differ, for the message: count, first index, largest difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    where = np.flatnonzero(a.ravel() != b.ravel())
    return f"{where.size} entries differ, first at {where[:1]}, max |diff| {np.max(np.abs(a - b)):.3g}"


def _fresh_process_case(tmp_path, env, *args):
    out = tmp_path / "case.npz"
    subprocess.run([sys.executable, str(CASES), str(out), *args], env=env, check=True, timeout=600)
    return dict(np.load(out))


@pytest.mark.parametrize("center", [False, True])
def test_one_and_two_threads_give_the_same_bits(tmp_path, center):
    import os

    case = ("--dtype", "float32", "--images", "200", "--batch", "16", "--steps", "12", "--infer-rows", "100",
            *(["--center"] if center else []))
    two = _fresh_process_case(tmp_path, dict(os.environ, NUMBA_NUM_THREADS="2"), *case, "--threads", "2")
    assert int(two["threads"]) == 2, "the fresh process did not run on two threads"
    one = run_case("float32", 1, images=200, batch=16, steps=12, infer_rows=100, center=center)
    for key in one:
        if key not in ("p_dense", "threads"):  # BLAS's blocking follows the parts: equal to rounding only
            assert np.array_equal(one[key], two[key]), \
                f"{key} differs between 1 and 2 threads: {_differences(one[key], two[key])}"
    assert np.allclose(one["p_dense"], two["p_dense"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("center", [False, True])
def test_three_threads_in_a_fresh_process_give_the_same_bits(tmp_path, center):
    import os

    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    three = _fresh_process_case(tmp_path, env, "--dtype", "float64", "--threads", "3", "--steps", "20",
                                *(["--center"] if center else []))
    one = run_case("float64", 1, steps=20, center=center)
    assert int(three["threads"]) == 3, "the fresh process did not run on three threads"
    for key in one:
        if key not in ("p_dense", "threads"):
            assert np.array_equal(one[key], three[key]), \
                f"{key} differs between 1 and 3 threads: {_differences(one[key], three[key])}"


# ------------------------------------------------------------------ the chooser, simulated


def _chooser(others=0):
    """A ThreadChooser that sees ``others`` running threads of other processes at the start."""
    chooser = ThreadChooser(cores=2)
    chooser.others_running = lambda: others
    return chooser


def _simulate(chooser, seconds_per_step, steps, max_threads=2, calls=1):
    """Run ``steps`` steps in ``calls`` train_batches calls; return the steps run at each count."""
    ran = {}
    for _ in range(calls):
        remaining = steps // calls
        while remaining:
            threads, chunk = chooser.next_chunk(max_threads, remaining)
            chooser.record(threads, chunk, chunk * seconds_per_step(threads))
            ran[threads] = ran.get(threads, 0) + chunk
            remaining -= chunk
    return ran


def test_chooser_falls_back_to_one_thread_when_two_are_slowed():
    chooser = _chooser()
    ran = _simulate(chooser, lambda t: 1.0e-3 if t == 2 else 0.3e-3, 2000)  # two threads 3x slower
    assert chooser.threads == 1
    assert "busy" in chooser.reason
    # the first chunks (warm-up, measured), then probes paid from PROBE_SHARE of the time
    limit = (1 + numba_threads.START_MEASURES) * numba_threads.FIRST_STEPS + (numba_threads.PROBE_SHARE * 2000 * 0.3e-3 + numba_threads.PROBE_SECONDS) / 1e-3
    assert ran[2] <= limit, ran
    assert chooser.record_dict["seconds_per_step"] == {1: 0.3e-3, 2: 1.0e-3}


def test_chooser_stays_on_two_threads_when_they_are_fastest_and_probes_rarely():
    chooser = _chooser()
    ran = _simulate(chooser, lambda t: 0.16e-3 if t == 2 else 0.28e-3, 20000, calls=20)
    assert chooser.threads == 2 and "fastest" in chooser.reason
    assert 1 in chooser.record_dict["seconds_per_step"], "one thread was never tried"
    extra = ran[1] * (0.28e-3 - 0.16e-3)  # seconds lost to probing one thread
    assert extra <= 1.5 * numba_threads.PROBE_SHARE * 20000 * 0.16e-3, f"probing cost too much: {ran}"


def test_chooser_notices_load_at_once_and_comes_back_when_it_ends():
    chooser = _chooser()
    idle = {1: 0.28e-3, 2: 0.16e-3}
    busy = {1: 0.30e-3, 2: 0.9e-3}
    _simulate(chooser, idle.get, 10000)
    assert chooser.threads == 2
    ran = _simulate(chooser, busy.get, numba_threads.CHUNK_STEPS + 2 * numba_threads.FIRST_STEPS)
    assert chooser.threads == 1, f"still on two threads after {ran} busy steps"
    # idle again: found within a few seconds' worth of steps at one thread
    _simulate(chooser, idle.get, int(3 / idle[1]))
    assert chooser.threads == 2


def test_chooser_starts_on_the_free_cores_when_other_processes_run_and_keeps_off_the_busy_ones(monkeypatch):
    busy = {1: 0.3e-3, 2: 20e-3}  # as measured here beside one CPU-bound process
    chooser = _chooser(others=1)
    ran = _simulate(chooser, busy.get, 2 * 938)  # two epochs at batch 64
    assert ran == {1: 2 * 938}, ran
    assert chooser.threads == 1 and "1 other running thread" in chooser.reason, chooser.reason
    # many cores, two of them busy: all but those
    chooser = _chooser(others=2)
    chooser.cores = 16
    assert chooser.next_chunk(16, 100)[0] == 14


def test_a_stall_no_process_explains_is_rechecked_soon():
    """One stalled chunk at two threads (the host took a core for ~40 ms) switches to one
    thread; with no other process running, two are tried again after RECHECK_SECONDS."""
    chooser = _chooser()
    idle, stalled = {1: 0.34e-3, 2: 0.21e-3}, {1: 0.34e-3, 2: 0.9e-3}
    _simulate(chooser, idle.get, 2000)
    assert chooser.threads == 2
    _simulate(chooser, stalled.get, numba_threads.CHUNK_STEPS + 2 * numba_threads.FIRST_STEPS)
    assert chooser.threads == 1, chooser.reason
    ran = _simulate(chooser, idle.get, int(0.1 / idle[1]))  # 0.1 s: a short time-to-97% run's rest
    assert chooser.threads == 2, chooser.reason
    assert ran[1] * idle[1] < 2 * numba_threads.RECHECK_SECONDS + 0.005, ran


def test_a_slowdown_beside_a_running_process_waits_for_the_budget():
    """The same slowdown with another process seen running: no early recheck, no steps
    at two threads for the next 0.3 s (a probe there costs 4-22 ms a step)."""
    chooser = _chooser()
    seen = [0]
    chooser.others_running = lambda: seen[0]
    _simulate(chooser, {1: 0.28e-3, 2: 0.16e-3}.get, 2000)
    seen[0] = 1
    busy = {1: 0.30e-3, 2: 20e-3}
    _simulate(chooser, busy.get, numba_threads.CHUNK_STEPS + 2 * numba_threads.FIRST_STEPS)
    assert chooser.threads == 1
    ran = _simulate(chooser, busy.get, int(0.3 / busy[1]))
    assert ran == {1: int(0.3 / busy[1])}, ran


def test_a_probe_that_won_in_a_disturbed_stretch_is_rechecked_soon():
    """The first chunks at two threads meet a disturbed stretch (no slowdown flagged: there
    is nothing faster before them), so the first probe moves to one thread; with nothing
    else running, two are tried again after RECHECK_SECONDS."""
    chooser = _chooser()
    disturbed, idle = {1: 0.23e-3, 2: 0.30e-3}, {1: 0.23e-3, 2: 0.13e-3}
    for _ in range(20):  # chunk by chunk until the first probe has switched
        _simulate(chooser, disturbed.get, numba_threads.MIN_STEPS)
        if chooser.threads == 1:
            break
    assert chooser.threads == 1 and "measured faster" in chooser.reason, chooser.reason
    ran = _simulate(chooser, idle.get, int(0.1 / idle[1]))
    assert chooser.threads == 2, chooser.reason
    assert ran[1] * idle[1] < 2 * numba_threads.RECHECK_SECONDS + 0.01, ran


def test_a_process_seen_only_at_the_start_is_rechecked_soon():
    """A task running at the very start (a kernel thread, the host) puts the first chunks on
    the free cores; once nothing else runs, the higher count is tried after RECHECK_SECONDS,
    not only when the probe budget allows (seconds later)."""
    chooser = _chooser()
    seen = [1]
    chooser.others_running = lambda: seen[0]
    idle = {1: 0.28e-3, 2: 0.16e-3}
    threads, _ = chooser.next_chunk(2, 1000)
    assert threads == 1
    seen[0] = 0
    ran = _simulate(chooser, idle.get, int(0.1 / idle[1]))  # 0.1 s of training
    assert chooser.threads == 2, chooser.reason
    assert ran[1] * idle[1] < 2 * numba_threads.RECHECK_SECONDS + 0.01, ran


def test_a_probe_faster_by_less_than_the_margin_keeps_the_count_and_says_so():
    chooser = _chooser(others=1)  # starts on one thread
    close = {1: 0.300e-3, 2: 0.285e-3}  # two threads 5% faster: not worth a switch
    _simulate(chooser, close.get, int(20 / close[1]))  # 20 s of training: probes of 2 threads
    assert chooser.threads == 1
    assert chooser.reason.startswith("1 thread kept (300 us a step; 2 measured 285, less than 10% faster)"), \
        chooser.reason


def test_chooser_comes_back_to_more_threads_later_if_they_were_busy_only_at_the_start():
    chooser = _chooser(others=1)
    idle = {1: 0.28e-3, 2: 0.16e-3}
    _simulate(chooser, idle.get, int(20 / idle[1]))  # 20 s of training
    assert chooser.threads == 2, chooser.reason


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc (Linux)")
def test_other_running_tasks_sees_a_busy_process():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # started and spinning
        assert numba_threads.other_running_tasks() >= 1
    finally:
        hog.kill()
        hog.wait()


def test_chooser_with_one_thread_allowed_does_not_probe():
    chooser = _chooser()
    assert chooser.next_chunk(1, 500) == (1, 500)
    assert "one thread allowed" in chooser.reason


# ------------------------------------------------------------------ a run, slowed


def _train(run, steps=600):
    images, labels = mnist_like(64, seed=2)
    params = init_params(0, np.float32)
    velocity = zeros_like_params(params)
    order = np.tile(np.arange(64, dtype=np.int64), steps * 4 // 64 + 1)[:steps * 4]
    losses = run.train_batches(params, velocity, images, labels, order, 4, np.full(steps, 0.01), 0.9)
    return losses, params, velocity


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba started with two threads or more")
@pytest.mark.parametrize("slow", [2, 1])
def test_run_uses_the_count_whose_chunks_are_fast_and_no_number_changes(slow):
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        pinned = RunThreads(NumbaBackend(), adaptive=False)
        reference = _train(pinned)
        assert pinned.choice["threads"] == 2 and pinned.choice["reason"].startswith("fixed")
        # simulated timings, whatever the machine is doing: the `slow` count at 5x the other's
        run = RunThreads(NumbaBackend(), chunk_seconds=lambda threads, steps, seconds:
                         steps * (5e-4 if threads == slow else 1e-4))
        run.chooser.others_running = lambda: 0  # whatever else runs on the machine
        result = _train(run)
        assert numba.get_num_threads() == 2, "the caller's thread count was not restored"
    finally:
        numba.set_num_threads(before)
    choice = run.choice
    assert choice["threads"] == 3 - slow, choice
    assert set(choice["seconds_per_step"]) == {1, 2}
    for got, want in zip((result[0], *result[1], *result[2]), (reference[0], *reference[1], *reference[2])):
        assert np.array_equal(got, want)


def test_two_runs_in_one_process_do_not_affect_each_other():
    """Run state lives in each run: the backend get_backend shares has no attribute a
    run sets, and a run slowed at one count (its own chooser) leaves the other's alone."""
    from digitbench import get_backend

    backend = get_backend("numba")
    attributes = dict(vars(backend))
    fixed = RunThreads(backend, adaptive=False)
    chosen = RunThreads(backend, chunk_seconds=lambda threads, steps, seconds: steps * 1e-4)
    chosen.chooser.others_running = lambda: 0
    a, b = _train(chosen, steps=40), _train(fixed, steps=40)
    assert vars(backend) == attributes, "a run changed the shared backend"
    assert fixed.chooser is None and fixed.choice["reason"].startswith("fixed")
    assert chosen.choice["reason"] != fixed.choice["reason"]
    assert chosen.workspace(4, a[1]) is not fixed.workspace(4, b[1])
    for got, want in zip((a[0], *a[1], *a[2]), (b[0], *b[1], *b[2])):
        assert np.array_equal(got, want)
    # another batch size and dtype in a third run: the first two keep their buffers
    kept = chosen.workspace(4, a[1])
    params = init_params(1, np.float64)
    RunThreads(backend, adaptive=False).train_batches(params, zeros_like_params(params), *mnist_like(16, seed=3),
                                                      np.arange(16), 8, np.full(2, 0.01), 0.9)
    assert chosen.workspace(4, a[1]) is kept
