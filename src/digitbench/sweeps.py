"""``digitbench bench --sweep batch|threads``: how throughput grows with the work.

Each point is short: training over a fixed number of samples (:data:`SWEEP_SAMPLES`,
rounded down to whole batches, at least one batch) and inference over as many test
images in chunks of the batch size, each repeated until :data:`MIN_SECONDS` have been
timed and at least :data:`MIN_REPEATS` times, best counts. One untimed call first, at
the same shapes, so compiling (numba, XLA, inductor) is never timed.

- ``batch``: every contender at each of :data:`BATCH_SIZES`, with the threads given, in
  this process.

Both hold numba at the stated thread count (the contenders' runs are made with
``adaptive=False``: a switch to fewer threads on a busy machine would change what a point
measures).
- ``threads``: 1 up to the machine's cores, at one batch size; each thread count in a
  fresh process (``multiprocessing``, spawn), because XLA reads its thread count once,
  when jax is imported, and numba's pool is sized before its first use.

The naive backend is left out (minutes per point at batch 4096). A peer that fails at a
point (torch.compile without a compiler, say) gets its one-line reason at that point.
"""

import multiprocessing

import numpy as np

from . import bench
from .backends import get_backend
from .networks import get_network
from .peers import make_peers
from .threads import prepare_threads, thread_limits, usable_cores

BATCH_SIZES = (1, 8, 64, 256, 1024, 4096)
SWEEP_SAMPLES = 4096
MIN_SECONDS, MIN_REPEATS, MAX_REPEATS = 0.5, 3, 100
#: ``--quick``: tiny points, a smoke test of the sweep, not a measurement.
QUICK_TIMING = dict(samples=512, min_seconds=0.0, min_repeats=1)


def best_time(fn, min_seconds=MIN_SECONDS, min_repeats=MIN_REPEATS, max_repeats=MAX_REPEATS):
    """Best of repeated calls of ``fn()`` after one untimed call; (seconds, repeats)."""
    fn()
    times = []
    while len(times) < min_repeats or (sum(times) < min_seconds and len(times) < max_repeats):
        times.append(bench.timed(fn))
    return min(times), len(times)


def measure_point(contender, data, batch_size, threads, samples=SWEEP_SAMPLES, seed=0, **timing):
    """Training and inference samples/s of ``contender`` at one batch size (a dict).

    ``samples`` training samples (whole batches) drawn from a seeded permutation (the
    permutation repeated when the data set is smaller), and ``samples`` test images.
    """
    contender.prepare(data, batch_size, seed)
    n = max(batch_size, samples // batch_size * batch_size)
    order = np.resize(np.random.default_rng(seed).permutation(len(data.train_images)), n).astype(np.int64)
    train_best, train_repeats = best_time(lambda: contender.train(order), **timing)
    X = contender.test[:samples]

    def infer():
        for start in range(0, len(X), batch_size):
            contender.predict(X[start:start + batch_size])

    infer_best, infer_repeats = best_time(infer, **timing)
    return dict(name=contender.name, kind=contender.kind, batch_size=batch_size, threads=threads,
                train_samples=n, train_seconds=train_best, train_repeats=train_repeats,
                train_samples_per_s=n / train_best, infer_samples=len(X), infer_seconds=infer_best,
                infer_repeats=infer_repeats, infer_samples_per_s=len(X) / infer_best)


def _point_or_error(contender, data, batch_size, threads, **kw):
    try:
        return measure_point(contender, data, batch_size, threads, **kw)
    except Exception as e:  # a peer's failure is reported, not raised; digitbench's are bugs
        if contender.kind != "peer":
            raise
        return dict(name=contender.name, kind=contender.kind, batch_size=batch_size, threads=threads,
                    error=bench.one_line(e))


def sweep_batch(contenders, data, threads, batch_sizes=None, reapply=None, **kw):
    """Every contender (but the slow) at every batch size (default :data:`BATCH_SIZES`); a list of points."""
    points = []
    for c in contenders:
        if c.slow:
            continue
        for b in batch_sizes or BATCH_SIZES:
            points.append(_point_or_error(c, data, b, threads, **kw))
            if reapply is not None:
                reapply()  # a warm-up may have loaded another thread pool
    return points


def sweep_threads(backends, peers, data, batch_size, thread_counts, network="mlp", **kw):
    """Every contender of ``network`` (a name) at each thread count, each count in a fresh
    process; a list of points."""
    context = multiprocessing.get_context("spawn")
    points = []
    for threads in thread_counts:
        with context.Pool(1) as pool:
            points += pool.apply(threads_point, (backends, peers, data, batch_size, threads, network), kw)
            pool.close()  # let the worker exit by itself: terminated (the with's exit), it leaves
            pool.join()  # the semaphores torch and jax made for the parent to warn about
    return points


def threads_point(backends, peers, data, batch_size, threads, network="mlp", **kw):
    """In a fresh process: every contender at ``threads`` threads (see :func:`sweep_batch`)."""
    prepare_threads(threads)  # before numba is imported
    contenders = [bench.BackendContender(get_backend(n, network), threads, adaptive=False) for n in backends]
    contenders += make_peers(threads, get_network(network)) if peers else []
    with thread_limits(threads) as reapply:
        return sweep_batch(contenders, data, threads, (batch_size,), reapply, **kw)


def thread_counts(cores=None):
    """1 up to the machine's cores: (1, 2, ..., cores)."""
    return tuple(range(1, (cores or usable_cores()) + 1))
