"""Whether numba's on-disk cache already holds the kernels: compiling ahead, or loading.

numba writes each ``cache=True`` function's machine code beside an index file
(``<module>.<function>-<line>.py<version>.nbi``) that maps (signature, machine, source
hash) to a data file. :func:`kernels_cached` reads those indexes (through numba's own
cache object, so the folder and the source check are numba's) and says whether every
kernel has an entry for a dtype; a ``warmup`` that finds them loads in about a second,
one that does not compiles for tens of seconds.
"""

import importlib

import numpy as np

#: The modules whose jitted functions the numba backend calls.
KERNEL_MODULES = ("numba_infer", "numba_layers", "numba_sparse", "numba_train", "numba_threads", "stack_row",
                  "denormals")


def cached_dispatchers():
    """Every ``cache=True`` jitted function of :data:`KERNEL_MODULES` (numba dispatchers) that
    numba caches on its own: ``inline="always"`` helpers are compiled into their callers."""
    found = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for value in vars(module).values():
            if getattr(value, "_cache", None) is not None and hasattr(value._cache, "_cache_file") \
                    and value.targetoptions.get("inline") != "always":
                found[id(value)] = value
    return list(found.values())


def _signatures(dispatcher):
    """The signatures (as text) that the function's cache index holds for this machine and source."""
    try:
        index = dispatcher._cache._cache_file._load_index()
    except Exception:  # an unreadable or foreign index counts as empty: numba recompiles then
        return []
    return [str(key[0]) for key in index]


def kernels_cached(dtypes=(np.float32,)):
    """True when every cached kernel has an entry for each of ``dtypes`` (or, when it takes
    no floats at all, any entry): a warm-up then loads rather than compiles.

    Parameters
    ----------
    dtypes : sequence of numpy float types, e.g. ``(np.float32,)``
    """
    names = [np.dtype(d).name for d in dtypes]
    for dispatcher in cached_dispatchers():
        signatures = _signatures(dispatcher)
        if not signatures:
            return False
        floating = [s for s in signatures if "float" in s]
        if floating and not all(any(n in s for s in floating) for n in names):
            return False
    return True
