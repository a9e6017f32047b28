"""Thread policy, in one place: how many threads, and who holds the pools at that count.

The kernels only compute: a backend's ``forward``, ``predict_proba``, ``predict`` and
``train_batches`` take ``threads`` (the parts of their parallel loops) as a plain value
and never read or set a process-wide thread count. This module is the one that does:

- :func:`usable_cores`: the cores this process may run on (its CPU affinity), computed once;
  :func:`most_threads`: the most a user may ask for;
- :func:`prepare_threads` (before numba is imported) and :func:`thread_limits`: the
  environment, threadpoolctl's limits on every BLAS and OpenMP pool, and numba's count,
  held for a whole command or benchmark; :func:`thread_report` states them;
- :func:`numba_thread_count` and :func:`numba_threads`: numba's count, read and held;
- :func:`blas_single_thread`: the BLAS libraries on one thread for a block of small products;
- :class:`RunThreads`: one training run's threads: the
  :class:`~digitbench.thread_chooser.ThreadChooser` that picks a count for each chunk of
  steps by measurement, and the backend's workspace, both owned by the run, not the backend.
"""

import contextlib
import functools
import os
import sys
import time

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from .thread_chooser import ThreadChooser

#: The pool-size variables read by BLAS and OpenMP runtimes when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@functools.lru_cache(maxsize=None)
def usable_cores():
    """The cores this process may run on (its CPU affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: The most threads a user may ask for, per core of the machine.
THREADS_PER_CORE = 8


def most_threads():
    """The most threads ``--threads`` and ``NUMBA_NUM_THREADS`` may ask for: 8 per core.

    More threads than cores only slow a computation down; far more (tens of thousands)
    exhaust the OpenMP runtime or the stack space of the process before any work starts.
    """
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def prepare_threads(threads):
    """Before numba is imported: let it start ``threads`` workers (it refuses more later)."""
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))


@contextlib.contextmanager
def thread_limits(threads):
    """Hold every BLAS and OpenMP pool, and numba's, at ``threads``; yields ``reapply()``.

    threadpoolctl changes the pools loaded so far; one loaded later (numba's OpenMP
    runtime is loaded when a kernel first runs) reads ``OMP_NUM_THREADS`` when it loads,
    which is set here too, and ``reapply()`` after each contender's warm-up covers the
    rest. PyTorch's pool is set by its contender (``torch.set_num_threads``). On exit,
    the environment and the limits are restored (the tests run this in-process).
    """
    saved = {v: os.environ.get(v) for v in THREAD_VARIABLES}
    os.environ.update({v: str(threads) for v in THREAD_VARIABLES})
    limits, numba_before = [], []

    def reapply():
        limits.append(threadpool_limits(limits=threads))
        if "numba" in sys.modules:
            import numba

            if not numba_before:
                numba_before.append(numba.get_num_threads())
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    reapply()
    try:
        yield reapply
    finally:
        for limit in reversed(limits):
            limit.restore_original_limits()
        if numba_before:
            sys.modules["numba"].set_num_threads(numba_before[0])
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value


def thread_report():
    """Each thread pool as (library, API, threads): the stated numbers, as the libraries see them."""
    pools = [{"library": p.get("internal_api"), "api": p.get("user_api"), "threads": p.get("num_threads"),
              "path": os.path.basename(p.get("filepath", "")), "kernels": p.get("architecture", "")}
             for p in threadpool_info()]
    if "numba" in sys.modules:
        import numba

        pools.append({"library": "numba", "api": numba.config.THREADING_LAYER, "threads": numba.get_num_threads(),
                      "path": "", "kernels": ""})
    return pools


def numba_thread_count():
    """numba's thread count now (set by :func:`thread_limits`), or 1 before numba is imported."""
    numba = sys.modules.get("numba")
    return numba.get_num_threads() if numba is not None else 1


@contextlib.contextmanager
def numba_threads(threads):
    """numba's thread count held at ``threads`` inside, restored on exit (numba imported)."""
    import numba

    before = numba.get_num_threads()
    if threads != before:
        numba.set_num_threads(threads)
    try:
        yield
    finally:
        if threads != before:
            numba.set_num_threads(before)


_blas_libraries = None


def blas_single_thread():
    """A context in which the BLAS libraries (NumPy's, and SciPy's, which ``np.dot``
    calls inside numba kernels) run on one thread; restored on exit.

    The products of a batch of 64 are small (64 x 784 @ 784 x 128 at most): a second
    BLAS thread gains little on them and loses more in waking and waiting; and inside a
    numba parallel region each thread runs its own products. The libraries are the ones
    threadpoolctl finds at the first call.
    """
    global _blas_libraries
    if _blas_libraries is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so that it is seen)

        _blas_libraries = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _OneThread(_blas_libraries)


class _OneThread:
    """Each library's own ``set_num_threads(1)`` on entry, its count back on exit.

    Called directly on threadpoolctl's library controllers, whose ``limit()`` context
    costs more than a small prediction.
    """

    def __init__(self, libs):
        self.libs = libs

    def __enter__(self):
        self.before = [(lib, lib.num_threads) for lib in self.libs]
        for lib, threads in self.before:
            if threads != 1:
                lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for lib, threads in self.before:
            if threads != 1:
                lib.set_num_threads(threads)
        return False


def single_thread_blas_for(backend, batch_size):
    """:func:`blas_single_thread` if ``backend`` wants one BLAS thread at ``batch_size``
    (``backend.single_thread_blas_batch``), else a context that changes nothing."""
    if batch_size <= backend.single_thread_blas_batch:
        return blas_single_thread()
    return contextlib.nullcontext()


@contextlib.contextmanager
def inference_threads(backend):
    """Yield the ``threads`` value for ``backend``'s ``forward``/``predict``: numba's
    count for a backend with parallel loops (BLAS held at one thread inside: each part
    runs its own products), else 1."""
    threads = numba_thread_count() if backend.parallel else 1
    with blas_single_thread() if backend.parallel else contextlib.nullcontext():
        yield threads


def _measured(threads, steps, seconds):
    """The seconds a chunk took, as the chooser is told them (tests simulate slow threads)."""
    return seconds


class RunThreads:
    """One training run's threads and buffers: created by the caller for each run.

    For a backend with parallel loops (``backend.parallel``), each ``train_batches``
    call is cut into chunks whose thread count the run's
    :class:`~digitbench.thread_chooser.ThreadChooser` picks by measurement
    (``adaptive``), or all run on the most threads allowed (``adaptive=False``: a sweep
    measures the count it states). The most allowed is numba's count at each call
    (:func:`thread_limits` sets it). Results do not depend on the thread count.

    Parameters
    ----------
    backend : Backend
    adaptive : bool, choose the count by measurement
    chunk_seconds : callable(threads, steps, seconds) -> seconds, what the chooser is
        told a chunk took (the identity; tests simulate slow threads with it)
    """

    def __init__(self, backend, adaptive=True, chunk_seconds=_measured):
        self.backend = backend
        self.adaptive = adaptive and backend.parallel
        self.chooser = ThreadChooser(usable_cores()) if self.adaptive else None
        self.chunk_seconds = chunk_seconds
        self._work, self._work_key = None, None

    @property
    def choice(self):
        """How the last call chose its thread count: ``threads``, ``max_threads``,
        ``reason`` and ``seconds_per_step``; None for a backend without parallel loops."""
        if not self.backend.parallel:
            return None
        if self.chooser is None:
            threads = numba_thread_count()
            return {"threads": threads, "max_threads": threads, "seconds_per_step": {},
                    "reason": "fixed: numba's thread count (adaptive choice off)"}
        return self.chooser.record_dict

    def workspace(self, batch_size, params):
        """The backend's buffers for this batch size and dtype, kept for the run (their
        pages stay mapped from call to call)."""
        key = (batch_size, params.W1.dtype)
        if self._work_key != key:
            self._work, self._work_key = self.backend.new_workspace(batch_size, params), key
        return self._work

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None):
        """:meth:`Backend.train_batches <digitbench.kernels.base.Backend.train_batches>`
        with this run's threads and workspace; returns the losses (steps,) float64."""
        backend, B = self.backend, int(batch_size)
        extra = {} if mean is None else {"mean": mean}
        with single_thread_blas_for(backend, B):
            if not backend.parallel:
                return backend.train_batches(params, velocity, images, labels, order, B, lrs, momentum, **extra)
            work, allowed = self.workspace(B, params), numba_thread_count()
            if self.chooser is None:
                return backend.train_batches(params, velocity, images, labels, order, B, lrs, momentum, **extra,
                                             threads=allowed, workspace=work)
            return self._chosen(params, velocity, images, labels, order, B, lrs, momentum, extra, work, allowed)

    def _chosen(self, params, velocity, images, labels, order, B, lrs, momentum, extra, work, allowed):
        """The steps in timed chunks, each on the count the chooser picks."""
        steps = len(lrs)
        losses = np.empty(steps)
        done = 0
        while done < steps:
            threads, chunk = self.chooser.next_chunk(allowed, steps - done)
            with numba_threads(threads):
                t0 = time.perf_counter()
                losses[done:done + chunk] = self.backend.train_batches(
                    params, velocity, images, labels, order[done * B:], B, lrs[done:done + chunk], momentum,
                    **extra, threads=threads, workspace=work)
                seconds = time.perf_counter() - t0
            self.chooser.record(threads, chunk, self.chunk_seconds(threads, chunk, seconds))
            done += chunk
        return losses
