"""asv benchmarks of digitbench: one file per area; shared builders in common.py.

This file runs before any benchmark module, so before NumPy or Numba is imported in
the benchmark process: it sizes the thread pools from ``DIGITBENCH_BENCH_THREADS``
(default 1) while the libraries can still read it. BLAS and OpenMP start with that many
threads (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ...);
numba is allowed up to :data:`CEILING` (``NUMBA_NUM_THREADS``), the most any benchmark
asks for, since numba can lower its count later but never raise it. Each benchmark then
holds its own count and checks it (``common.hold_threads``), refusing to run when it
cannot. Only the standard library is imported here; see README.md in this folder.
"""

import os
import sys

_VARIABLE = "DIGITBENCH_BENCH_THREADS"
_raw = os.environ.get(_VARIABLE, "1")
if not _raw.isdigit() or int(_raw) < 1:
    raise ValueError(f"{_VARIABLE} must be a whole number of threads >= 1, not {_raw!r}")

#: Threads of every benchmark that has no ``threads`` parameter.
THREADS = int(_raw)
#: The machine's cores (those this process may run on): the other ``threads`` value.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
#: The most threads any benchmark holds; numba's pool is started this large.
CEILING = max(THREADS, CORES)

#: The pool-size variables read by BLAS and OpenMP runtimes when they load.
POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

os.environ.update({name: str(THREADS) for name in POOL_VARIABLES})
if "numba" not in sys.modules:  # once numba is loaded its pool is fixed; hold_threads checks it
    os.environ["NUMBA_NUM_THREADS"] = str(CEILING)
