"""The registry of backends by name; each is imported only when first asked for."""

import importlib

from .errors import UsageError

#: name -> module that defines ``BACKEND``, a subclass of kernels.base.Backend
BACKENDS = {
    "naive": "digitbench.kernels.naive",
    "numpy": "digitbench.kernels.numpy_backend",
    "numba": "digitbench.kernels.numba_backend",
}
#: What ``train`` uses when no backend is named: the fastest one the project has.
DEFAULT_BACKEND = "numba"  # the fastest; its accuracy and speed: docs/results.md

_instances = {}


class UnknownBackend(UsageError, ValueError):
    """An unknown backend name; a ValueError as the public contract says."""


def get_backend(name):
    """Return the backend called ``name`` ("naive", "numpy" or "numba").

    Raises
    ------
    ValueError (UnknownBackend) naming the valid backends, for any other name.
    """
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name not in _instances:
        _instances[name] = importlib.import_module(BACKENDS[name]).BACKEND()
    return _instances[name]
