"""Start-up, each in a fresh interpreter: ``import digitbench``, a ready backend, numba's cold compile.

"Ready" means compiled: ``backend.warmup`` where the backend has it (numba loads its
kernels from the on-disk cache, ``cache=True``), then one call of each operation the
benchmarks time. ``timeraw_import_and_warmup`` starts from a warm cache (filled in
``setup``); ``timeraw_cold_compile`` from an empty one (``NUMBA_CACHE_DIR`` set to a new
temporary folder before numba is imported), so it is numba's full compile time.
The child interpreters inherit the thread variables set in ``__init__.py``.
"""

import subprocess
import sys

from .common import ALL_BACKENDS, PROFILES, backend_or_skip

#: Make ``backend`` ready; the same statements as common.warm_up, standing alone.
READY = """
import inspect
import numpy as np
import digitbench
backend = digitbench.get_backend({name!r})
warmup = getattr(backend, "warmup", None)
if warmup is not None:
    needs_dtypes = any(p.default is p.empty for p in inspect.signature(warmup).parameters.values())
    warmup((np.float32,)) if needs_dtypes else warmup()
p = digitbench.init_params(0, np.float32)
X = np.zeros((2, 784), np.float32)
y = np.zeros(2, np.int64)
backend.forward(p, X)
backend.loss_and_grads(p, X, y)
v = type(p)(*(np.zeros_like(w) for w in p))
backend.train_batches(p, v, np.zeros((2, 784), np.uint8), y, np.arange(2), 2, np.full(1, 0.01), 0.9)
"""

#: Run in the child before the clock starts: a new, empty numba cache, removed at exit.
EMPTY_CACHE = """
import atexit, os, shutil, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="digitbench-cold-")
atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], True)
"""


class ImportAndWarmup:
    params = (PROFILES, ALL_BACKENDS)
    param_names = ("profile", "backend")
    number = 1
    repeat = (3, 10, 30.0)
    timeout = 600

    def setup(self, profile, backend):
        backend_or_skip(backend, batch_size=1)  # skipped where the backend is missing or broken
        # Fill numba's on-disk cache, so that every timed run starts from it.
        subprocess.run([sys.executable, "-c", READY.format(name=backend)], check=True)

    def timeraw_import_and_warmup(self, profile, backend):
        return READY.format(name=backend)


class ColdCompile:
    """numba's compile of every kernel the benchmarks use, from an empty cache."""

    params = PROFILES
    param_names = ("profile",)
    number = 1
    repeat = (2, 3, 120.0)
    timeout = 900

    def setup(self, profile):
        backend_or_skip("numba")  # skipped where numba is missing or broken; the timed runs start cold

    def timeraw_cold_compile(self, profile):
        return READY.format(name="numba"), EMPTY_CACHE


class Import:
    params = PROFILES
    param_names = ("profile",)
    number = 1
    repeat = (3, 10, 30.0)

    def timeraw_import_digitbench(self, profile):
        return "import digitbench"
