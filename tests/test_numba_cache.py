"""numba's cache of the kernels is keyed by the sources of every kernel module
(kernels/numba_cache.py): editing any kernel makes every cached function stale."""

import shutil

from numba.core import caching

from digitbench.kernels import numba_cache
from digitbench.kernels.numba_layers import linear_forward_sparse


def test_editing_any_kernel_in_a_copy_changes_the_key(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(numba_cache.KERNELS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert numba_cache.kernels_stamp(copy) == numba_cache.kernels_stamp()
    for name in ("stack_row.py", "numba_sparse.py", "denormals.py"):  # modules others inline or call
        edited = copy / name
        before = numba_cache.kernels_stamp(copy)
        edited.write_text(edited.read_text() + "\n# an edit\n")
        assert numba_cache.kernels_stamp(copy) != before, name


def test_the_kernels_are_cached_by_the_locators_keyed_by_every_source():
    assert list(caching.CacheImpl._locator_classes[:len(numba_cache.LOCATORS)]) == list(numba_cache.LOCATORS)
    locator = linear_forward_sparse._cache._impl.locator
    assert isinstance(locator, numba_cache.LOCATORS)
    assert locator.get_source_stamp() == numba_cache.kernels_stamp()


def test_a_read_only_install_falls_back_to_the_user_cache_folder(tmp_path):
    """The per-user locator (numba's own fallback when site-packages is read-only) keeps
    the same key, and a function outside kernels/ is left to numba's own locators."""
    py_func = linear_forward_sparse.py_func
    user_wide = numba_cache.UserWideLocator.from_function(py_func, py_func.__code__.co_filename)
    assert user_wide is not None and not user_wide.get_cache_path().startswith(str(numba_cache.KERNELS))
    assert user_wide.get_source_stamp() == numba_cache.kernels_stamp()
    outside = tmp_path / "elsewhere.py"
    outside.write_text("def f():\n    return 1\n")
    assert numba_cache.InTreeLocator.from_function(py_func, str(outside)) is None
