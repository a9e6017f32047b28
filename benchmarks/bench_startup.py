"""Cold start, each in a fresh interpreter: ``import digitbench``, then a ready backend.

"Ready" means compiled: ``backend.warmup()`` where the backend has it (numba loads its
kernels from the on-disk cache, ``cache=True``), else one forward pass of one image. The
cache is filled in ``setup``, so what is timed is a start with a warm cache.
"""

import subprocess
import sys

from .common import ALL_BACKENDS

READY = """
import numpy as np
import digitbench
backend = digitbench.get_backend({name!r})
if hasattr(backend, "warmup"):
    backend.warmup()
else:
    backend.forward(digitbench.init_params(), np.zeros((1, 784), dtype=np.float32))
"""


class ImportAndWarmup:
    params = ALL_BACKENDS
    param_names = ("backend",)
    repeat = (3, 10, 30.0)
    timeout = 600

    def setup(self, backend):
        import digitbench

        if backend not in digitbench.BACKENDS:
            raise NotImplementedError(f"backend {backend!r} is not in this commit")
        # Fill numba's on-disk cache, so that every timed run starts from it.
        subprocess.run([sys.executable, "-c", READY.format(name=backend)], check=True)

    def timeraw_import_and_warmup(self, backend):
        return READY.format(name=backend)


class Import:
    repeat = (3, 10, 30.0)

    def timeraw_import_digitbench(self):
        return "import digitbench"
