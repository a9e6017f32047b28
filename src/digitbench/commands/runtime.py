"""What every computing subcommand shares at run time: threads and the compile notice.

- ``--threads N`` (:func:`add_threads_option`, applied by :func:`threaded`): BLAS,
  OpenMP and numba's pools held at N threads for the whole command, through
  :func:`digitbench.threads.thread_limits` (the same limits ``digitbench bench`` uses).
  The default is every core this process may run on.
- :func:`load_backend`: :func:`~digitbench.get_backend` whose ``warmup()`` (numba
  compiling its kernels) says so on standard error when it takes more than two seconds.
  A backend with ``kernels_cached(dtypes)`` is asked first: kernels found in the cache
  load without a notice, however long the load takes. The measured compile time is on
  the results page (docs/results.md, one column a machine), not in the notice: it depends on
  the machine and its load.
"""

import contextlib
import copy
import functools
import itertools
import sys
import threading
import time

import numpy as np

from ..backends import get_backend
from ..threads import prepare_threads, thread_limits, usable_cores
from .options import thread_count

#: Seconds a warm-up may take before the notice appears (a cache load takes ~0.3 s idle, 1 s when busy).
NOTICE_DELAY = 2.0


def default_threads():
    """Cores this process may run on (:func:`digitbench.threads.usable_cores`)."""
    return usable_cores()


def add_threads_option(parser):
    parser.add_argument("--threads", type=thread_count, default=default_threads(),
                        help=f"threads for BLAS, OpenMP and numba (default: every core, here {default_threads()})")


def threaded(run):
    """``run(args)`` with BLAS, OpenMP and numba held at ``args.threads`` threads.

    numba's pool is set only once numba is imported, so a command that may use the
    numba backend (``args.backend`` None, "numba", or a list holding it) loads it first.
    """
    @functools.wraps(run)
    def run_threaded(args):
        prepare_threads(args.threads)  # before numba is imported: it may start that many workers
        names = args.backend if isinstance(args.backend, list) else [args.backend]
        if None in names or "numba" in names:
            get_backend("numba")
        with thread_limits(args.threads):
            return run(args)

    return run_threaded


@contextlib.contextmanager
def compile_notice(what, delay=NOTICE_DELAY, stream=None, expected="once; later runs load it from the cache"):
    """Say on ``stream`` (default: standard error) that ``what`` is compiling, if it takes long.

    A timer thread waits ``delay`` seconds; if the block is still running it prints
    "compiling the WHAT (EXPECTED)..." and, when the stream is a
    terminal, updates the elapsed seconds every 0.25 s; at the end it prints
    "done in N s". A block that ends within ``delay`` prints nothing.
    """
    stream = stream or sys.stderr
    done = threading.Event()
    shown = []
    tty = hasattr(stream, "isatty") and stream.isatty()
    notice = f"compiling the {what} ({expected})..."

    def watch():
        if done.wait(delay):
            return
        shown.append(True)
        if not tty:
            print(notice, file=stream, flush=True)
            return
        for mark in itertools.cycle("|/-\\"):
            stream.write(f"\r{notice} {mark} {time.perf_counter() - t0:4.0f} s")
            stream.flush()
            if done.wait(0.25):
                return

    t0 = time.perf_counter()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if shown:
            end = f"\r{notice} done in {time.perf_counter() - t0:.1f} s" if tty else \
                f"done in {time.perf_counter() - t0:.1f} s"
            print(end, file=stream, flush=True)


def announce_warmup(backend, delay=NOTICE_DELAY):
    """A copy of ``backend`` whose ``warmup`` runs inside :func:`compile_notice`.

    The notice is given only when the backend has no ``kernels_cached`` or it answers
    False for the dtypes asked (``warmup(dtypes)``, float32 by default). The backend that
    :func:`~digitbench.get_backend` shares is left as it is (backends hold no run state,
    so a shallow copy is the same backend); doing it twice wraps once.
    """
    warmup = getattr(backend, "warmup", None)
    if warmup is None or getattr(warmup, "announced", False):
        return backend
    backend = copy.copy(backend)
    warmup = backend.warmup

    @functools.wraps(warmup)
    def announced_warmup(*args, **kwargs):
        dtypes = args[0] if args else kwargs.get("dtypes", (np.float32,))
        cached = getattr(backend, "kernels_cached", None)
        if cached is not None and cached(dtypes):
            return warmup(*args, **kwargs)
        with compile_notice(f"{backend.name} kernels", delay=delay):
            return warmup(*args, **kwargs)

    announced_warmup.announced = True
    backend.warmup = announced_warmup
    return backend


def load_backend(name, network="mlp"):
    """:func:`~digitbench.get_backend` ``(name, network)``, its warm-up announced (:func:`announce_warmup`)."""
    return announce_warmup(get_backend(name, network))
