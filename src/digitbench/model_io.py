"""Saving and loading trained models as ``.npz``, never unpickling anything.

A model file is a zip (NumPy's ``.npz``) holding exactly the six parameter arrays
``W1 b1 W2 b2 W3 b3`` and ``meta``, a 0-d unicode array with JSON metadata::

    {"format": "digitbench-model", "format_version": 1, "layer_sizes": [784, 128, 64, 10],
     "dtype": "float32", "backend": "numba", "seed": 0, "test_accuracy": 0.978, ...}

Loading opens it with ``allow_pickle=False``, refuses members that are too large
before reading them, and checks keys, shapes, dtypes and finiteness, raising
:class:`~digitbench.errors.ModelFileError` with one line on any problem. Saving writes
a temporary file beside the target and renames it, so a crash mid-save leaves the
previous model intact.
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .params import LAYER_SIZES, PARAM_SHAPES, Params

FORMAT = "digitbench-model"
FORMAT_VERSION = 1
#: The largest member a model may hold: W1 in float64 is 784*128*8 = 803 KB.
MAX_MEMBER_BYTES = 4 * 1024 * 1024
MAX_META_BYTES = 1024 * 1024
ALLOWED_DTYPES = ("float32", "float64")
PARAM_NAMES = Params._fields


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it.

    The rename is atomic on POSIX: readers see the old file or the new one, never half.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(path, params, **meta):
    """Write ``params`` and JSON-serialisable ``meta`` to ``path`` (.npz) atomically."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ModelFileError(f"{path}: folder {path.parent} does not exist")
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "layer_sizes": list(LAYER_SIZES),
            "dtype": str(params.W1.dtype), **meta}
    arrays = {name: np.ascontiguousarray(a) for name, a in zip(PARAM_NAMES, params)}
    arrays["meta"] = np.array(json.dumps(info))
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as e:
        raise ModelFileError(f"{path}: cannot write ({e.strerror or e})") from None
    return path


def load_model(path):
    """Read a model written by :func:`save_model`.

    Returns
    -------
    (Params, meta dict)
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(f"{path}: not a digitbench model (not a readable .npz zip: {e})") from None
    expected = {f"{name}.npy" for name in (*PARAM_NAMES, "meta")}
    if set(members) != expected:
        missing = sorted(n[:-4] for n in expected - set(members))
        extra = sorted(set(members) - expected)
        raise ModelFileError(f"{path}: not a digitbench model (missing {missing or 'nothing'}, extra {extra or 'nothing'})")
    for name, info in members.items():
        limit = MAX_META_BYTES if name == "meta.npy" else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ModelFileError(f"{path}: member {name} declares {info.file_size} bytes, more than {limit}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {name: npz[name] for name in (*PARAM_NAMES, "meta")}
    except ValueError as e:  # object arrays need pickle, which is refused
        raise ModelFileError(f"{path}: refused to load ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelFileError(f"{path}: corrupt model file ({e})") from None
    meta = _check_meta(path, raw["meta"])
    arrays = []
    for name, shape in zip(PARAM_NAMES, PARAM_SHAPES):
        a = raw[name]
        if a.dtype.name not in ALLOWED_DTYPES:
            raise ModelFileError(f"{path}: {name} has dtype {a.dtype}, expected float32 or float64")
        if a.dtype.name != meta["dtype"]:
            raise ModelFileError(f"{path}: {name} has dtype {a.dtype} but the model says {meta['dtype']}")
        if a.shape != shape:
            raise ModelFileError(f"{path}: {name} has shape {a.shape}, expected {shape}")
        if not np.isfinite(a).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
        arrays.append(np.ascontiguousarray(a))
    return Params(*arrays), meta


def _check_meta(path, meta_array):
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise ModelFileError(f"{path}: metadata is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a digitbench model (metadata lacks format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta.get('format_version')!r} is not supported (this digitbench reads {FORMAT_VERSION})"
        )
    if meta.get("layer_sizes") != list(LAYER_SIZES):
        raise ModelFileError(f"{path}: layer sizes {meta.get('layer_sizes')} differ from {list(LAYER_SIZES)}")
    if meta.get("dtype") not in ALLOWED_DTYPES:
        raise ModelFileError(f"{path}: unsupported dtype {meta.get('dtype')!r} in metadata")
    return meta
