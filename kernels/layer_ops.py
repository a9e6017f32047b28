"""The layer ops of each backend by name: ``get_ops("numpy").conv2d_forward(...)``.

Every backend provides the same ops with the same arguments (:mod:`~.layer_shapes`
lists them), each ``<kind>_backward`` beside its ``<kind>_forward``, so that a network
declared as a sequence of layer kinds runs on any backend by looking its ops up by name
(:mod:`digitbench.networks`). The modules are imported when first asked for, so that
Numba is loaded only for the numba ops.
"""

import functools
import importlib
from types import SimpleNamespace

#: backend name -> the module of its layer ops (a tuple ``OPS`` of their names)
OP_MODULES = {
    "naive": "digitbench.kernels.conv_naive",
    "numpy": "digitbench.kernels.conv_numpy",
    "numba": "digitbench.kernels.conv_numba",
}
#: Backends whose ops take the keyword ``threads`` (parts of their parallel loops).
THREADED = {"numba"}


@functools.lru_cache(maxsize=None)
def get_ops(backend, threads=1):
    """The ops of ``backend`` as attributes (``conv2d_forward``, ``maxpool_backward``, ...).

    Parameters
    ----------
    backend : str, "naive", "numpy" or "numba"
    threads : int, for the numba ops: the parts each parallel loop is split into (the
        results do not depend on it); the caller sets Numba's thread count

    Returns
    -------
    types.SimpleNamespace with ``name`` and one function per op
    """
    if backend not in OP_MODULES:
        raise ValueError(f"unknown backend {backend!r}; choose one of: {', '.join(OP_MODULES)}")
    if not (isinstance(threads, int) and threads >= 1):
        raise ValueError(f"threads should be an integer >= 1, got {threads!r}")
    module = importlib.import_module(OP_MODULES[backend])
    ops = {name: getattr(module, name) for name in module.OPS}
    if backend in THREADED:
        ops = {name: functools.partial(f, threads=threads) for name, f in ops.items()}
    return SimpleNamespace(name=backend, threads=threads, **ops)
