"""numba's on-disk cache for the kernels, keyed by the sources of every kernel module.

numba checks a cached function against the source of its own file only. The kernels
call (and inline) each other across modules, so after an edit of one module a function
of another would load stale machine code. Here each cached function's source stamp is
instead a SHA-256 of every ``*.py`` file of this folder (:func:`kernels_stamp`): editing
any kernel makes every cached function stale, and numba compiles it again, with no
manual step.

The cache stays where numba would put it: ``NUMBA_CACHE_DIR`` when set, else the
``__pycache__`` beside the sources when it is writable, else numba's per-user cache
folder (an installed wheel in a read-only site-packages). The locators are put first in
numba's list when this module is imported, which every numba kernel module does before
defining its functions.

:func:`kernels_cached` reads the cache indexes (through numba's own cache objects, so
the folder and the stamp are the ones above) and says whether every kernel has an entry
for a dtype: a warm-up that finds them loads, one that does not compiles.
"""

import functools
import hashlib
import importlib
from pathlib import Path

import numpy as np
from numba.core import caching

#: The folder of the kernel sources.
KERNELS = Path(__file__).resolve().parent


def kernels_stamp(folder=KERNELS):
    """SHA-256 (hex) of the names and contents of every ``*.py`` file in ``folder``."""
    return _stamp(tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.py"))),
                  str(folder))


@functools.lru_cache(maxsize=None)
def _stamp(files, folder):
    """The hash itself, memoized by the files' names, times and sizes (re-hashed on change)."""
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(name.encode() + b"\0")
        digest.update((Path(folder) / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class _KernelsStamp:
    """A locator mixin: kernel files only, their stamp the hash of all kernel sources."""

    def get_source_stamp(self):
        return kernels_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            if Path(py_file).resolve().parent != KERNELS:
                return None
        except OSError:
            return None
        return super().from_function(py_func, py_file)


class UserProvidedLocator(_KernelsStamp, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``, when set."""


class InTreeLocator(_KernelsStamp, caching.InTreeCacheLocator):
    """``__pycache__`` beside the kernel sources, when writable."""


class UserWideLocator(_KernelsStamp, caching.UserWideCacheLocator):
    """numba's per-user cache folder (a read-only install)."""


LOCATORS = (UserProvidedLocator, InTreeLocator, UserWideLocator)


def install():
    """Put :data:`LOCATORS` first in numba's list of cache locators (once)."""
    classes = caching.CacheImpl._locator_classes
    if classes[:len(LOCATORS)] != list(LOCATORS):
        classes[:0] = [c for c in LOCATORS if c not in classes]

install()

#: The modules whose jitted functions the numba backend calls.
KERNEL_MODULES = ("numba_infer", "numba_layers", "numba_sparse", "numba_train", "stack_row", "denormals")


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
    """The signatures (as text) that the function's cache index holds for this machine and
    these kernel sources (an index written for other sources counts as empty)."""
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
