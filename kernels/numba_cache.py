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
"""

import functools
import hashlib
from pathlib import Path

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
