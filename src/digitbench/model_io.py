"""Saving and loading trained models as ``.npz``, never unpickling anything.

A model file is a zip (NumPy's ``.npz``) holding exactly its network's parameter arrays
(the MLP's six ``W1 b1 W2 b2 W3 b3``, the CNN's eight ``W1 b1 ... W4 b4``) and ``meta``,
a 0-d unicode array with JSON metadata::

    {"format": "digitbench-model", "format_version": 1, "network": "mlp",
     "layer_sizes": [784, 128, 64, 10], "dtype": "float32", "backend": "numba", "seed": 0,
     "test_accuracy": 0.978, ...}

``network`` names the network (:mod:`digitbench.networks`); a file without it is an
MLP's. ``layer_sizes`` is written for the MLP only.

Loading never unpickles: it parses each member's .npy header itself, refuses object
dtypes and members that are too large before reading them, and checks keys, shapes,
dtypes and finiteness, raising
:class:`~digitbench.errors.ModelFileError` with one line on any problem. Saving goes through
:func:`digitbench.files.write_file` (a temporary file beside the target, renamed), so a
crash mid-save leaves the previous model intact.
"""

import json
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from .errors import ModelFileError, UsageError
from .files import describe_kind
from .files import write_file
from .networks import NETWORKS, network_of
from .params import LAYER_SIZES, Params
from .schema import (CHECKPOINT_FORMAT, FORMAT_VERSION, MAX_META_BYTES, MAX_META_CHARS, MODEL_FORMAT, check_arrays,
                     check_checkpoint, file_network, member_names, parse_meta)

#: The largest member a model may hold: the CNN's W3 in float64 is 1568*128*8 = 1.6 MB.
MAX_MEMBER_BYTES = 4 * 1024 * 1024
#: Room for a .npy header on top of a member's data, in the zip's declared sizes.
NPY_HEADER_ROOM = 64 * 1024
PARAM_NAMES = Params._fields
#: The parameter names of a model file, by network.
MODEL_MEMBERS = {network: member_names(network) for network in NETWORKS}


def save_model(path, params, **meta):
    """Write ``params`` (Params or CnnParams) and JSON-serialisable ``meta`` to ``path``
    (.npz) atomically; the metadata records the network."""
    arrays = {name: np.ascontiguousarray(a) for name, a in zip(params._fields, params)}
    return _save(path, MODEL_FORMAT, arrays, {**_network_meta(params), **meta})


def _network_meta(params):
    """The metadata that says what ``params`` are: network, its layer sizes (MLP), dtype."""
    network = network_of(params).name
    sizes = {"layer_sizes": list(LAYER_SIZES)} if network == "mlp" else {}
    return {"network": network, **sizes, "dtype": str(params.W1.dtype)}


def _save(path, kind, arrays, meta):
    path = Path(path)
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise ModelFileError(f"{path}: not saved: {name} holds NaN or infinite values")
    info = {"format": kind, "format_version": FORMAT_VERSION, **meta}
    text = json.dumps(info)
    if len(text) > MAX_META_CHARS:  # a loader would refuse it: refuse it now, before the file is written
        raise ModelFileError(f"{path}: not saved: its metadata is {len(text):,} characters, more than the "
                             f"{MAX_META_CHARS:,} a {kind.split('-')[1]} file may hold")
    arrays = {**arrays, "meta": np.array(text)}
    return write_file(path, lambda f: np.savez(f, **arrays))  # atomic; checks the destination


def check_replaceable(path, option):
    """Refuse (UsageError) to overwrite an existing, non-empty regular file at ``path``
    that is not a digitbench model or checkpoint: only such files are replaced.

    Judged by the zip's member names, without reading them.
    """
    try:
        info = os.stat(path)
    except OSError:
        return
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return
    known = {f"{name}.npy" for network in NETWORKS for name in
             (*member_names(network), *member_names(network, "v"), "epoch_losses", "meta")}
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
        ours = "meta.npy" in names and names <= known
    except (zipfile.BadZipFile, OSError, ValueError):
        ours = False
    if not ours:
        raise UsageError(f"{option} {path}: exists and is not a digitbench model or checkpoint; it is left "
                         "as it is (name another file, or remove it first)")


# --------------------------------------------------------------------------- checkpoints

VELOCITY_NAMES = member_names("mlp", "v")
#: The array members of a checkpoint, by network: parameters, velocities, this epoch's losses.
CHECKPOINT_MEMBERS = {network: (*member_names(network), *member_names(network, "v"), "epoch_losses")
                      for network in NETWORKS}


def save_checkpoint(path, params, velocity, epoch_losses, **meta):
    """Write a training checkpoint atomically: the state that resuming needs.

    Parameters
    ----------
    params, velocity : Params or CnnParams (the SGD state)
    epoch_losses : ndarray of shape (steps done in the current epoch,), float64
    meta : JSON-serialisable (epoch, step, RNG state, config, history, ...)
    """
    arrays = {name: np.ascontiguousarray(a) for name, a in zip(params._fields, params)}
    arrays.update({f"v{name}": np.ascontiguousarray(a) for name, a in zip(params._fields, velocity)})
    arrays["epoch_losses"] = np.asarray(epoch_losses, dtype=np.float64).reshape(-1)
    return _save(path, CHECKPOINT_FORMAT, arrays, {**_network_meta(params), **meta})


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`, as carefully as a model.

    Returns
    -------
    (params, velocity : the network's parameter type, epoch_losses : ndarray float64, meta : dict)
    """
    raw = read_npz(path, [[*names, "meta"] for names in CHECKPOINT_MEMBERS.values()], {"meta": MAX_META_BYTES},
                   MAX_MEMBER_BYTES, what="checkpoint")
    meta = parse_meta(path, raw["meta"], CHECKPOINT_FORMAT)
    network = _members_network(path, raw, meta, CHECKPOINT_MEMBERS)
    params = check_arrays(path, raw, network, meta["dtype"])
    velocity = check_arrays(path, raw, network, meta["dtype"], prefix="v")
    losses = raw["epoch_losses"]
    if losses.dtype != np.float64 or losses.ndim != 1 or not np.isfinite(losses).all():
        raise ModelFileError(f"{path}: epoch_losses must be finite float64 of shape (steps,)")
    check_checkpoint(path, meta, losses)
    return params, velocity, np.array(losses), meta


def load_model(path):
    """Read a model written by :func:`save_model`.

    Returns
    -------
    (Params or CnnParams, as the file's network; meta dict)
    """
    raw = read_npz(path, [[*names, "meta"] for names in MODEL_MEMBERS.values()], {"meta": MAX_META_BYTES},
                   MAX_MEMBER_BYTES)
    meta = parse_meta(path, raw["meta"], MODEL_FORMAT)
    network = _members_network(path, raw, meta, MODEL_MEMBERS)
    return check_arrays(path, raw, network, meta["dtype"]), meta


def _members_network(path, raw, meta, members):
    """The file's network, whose arrays ``raw`` must hold: ModelFileError when the arrays
    are another network's than the metadata records."""
    network = file_network(meta)
    if set(raw) != {*members[network], "meta"}:
        held = next(name for name, names in members.items() if set(raw) == {*names, "meta"})
        raise ModelFileError(f"{path}: its metadata says network {network!r} but its arrays are the {held}'s")
    return network


def read_npz(path, names, limits, default_limit, what="model"):
    """The members ``names`` of the .npz at ``path`` as arrays, read without pickle.

    Each member's .npy header is parsed first (NumPy's own parser, which evaluates
    only literals); object dtypes, which would need pickle, are refused, and so is any
    member whose declared size exceeds its limit, *before* its data is read. So a
    hostile file can make this read at most ``sum(limits)`` bytes, whatever it claims.

    Parameters
    ----------
    path : str or Path
    names : list of str, exactly the members the file must hold (without ".npy"); or a
        list of such lists, the file holding exactly one of them
    limits : dict name -> bytes; other members get ``default_limit``
    what : "model" or "checkpoint", for the messages

    Returns
    -------
    dict name -> ndarray (read-only views of the bytes read)
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"{path}: is {describe_kind(mode)}, not a digitbench {what} file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            found = [info.filename for info in infos]
            if len(found) != len(set(found)):
                raise ModelFileError(f"{path}: not a digitbench {what} (a member name appears twice)")
            choices = [{f"{name}.npy" for name in alternative}
                       for alternative in ([names] if isinstance(names[0], str) else names)]
            expected = min(choices, key=lambda names: (len(names ^ set(found)), -len(names & set(found))))  # closest
            if set(found) != expected:
                if what == "model" and "epoch_losses.npy" in found:
                    raise ModelFileError(f"{path}: this is a training checkpoint, not a model; "
                                         f"finish the run with `digitbench train --resume {path}`")
                if what == "checkpoint" and any(set(found) == {f"{n}.npy" for n in (*model, "meta")}
                                                for model in MODEL_MEMBERS.values()):
                    raise ModelFileError(f"{path}: this is a trained model, not a training checkpoint")
                missing = sorted(n[:-4] for n in expected - set(found))
                extra = sorted(set(found) - expected)
                raise ModelFileError(f"{path}: not a digitbench {what} (missing {', '.join(missing) or 'nothing'}; "
                                     f"unexpected {', '.join(extra) or 'nothing'})")
            arrays = {}
            for info in infos:
                name = info.filename[:-4]
                limit = limits.get(name, default_limit)
                if info.file_size > limit + NPY_HEADER_ROOM:
                    raise ModelFileError(f"{path}: member {info.filename} declares {info.file_size} bytes, "
                                         f"more than {limit}")
                with zf.open(info) as member:
                    arrays[name] = _read_npy(member, path, name, limit)
            return arrays
    except ModelFileError:
        raise
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{path}: not a digitbench {what} (not a readable .npz zip: {e})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error) as e:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise ModelFileError(f"{path}: corrupt file ({type(e).__name__}: {e})") from None


def _read_npy(member, path, name, limit):
    """One .npy stream: header checked, then exactly the declared bytes."""
    try:
        version = npformat.read_magic(member)
    except ValueError:
        raise ModelFileError(f"{path}: member {name} is not a NumPy .npy array") from None
    if version not in ((1, 0), (2, 0)):
        raise ModelFileError(f"{path}: member {name} uses .npy format {version}, which is not read here")
    read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
    try:
        shape, fortran_order, dtype = read_header(member)
    except ValueError as e:  # NumPy's own message (an oversized header, say) spans lines: one here
        raise ModelFileError(f"{path}: member {name} has a bad .npy header ({' '.join(str(e).split())})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{path}: {name} is an object array; loading it would unpickle, which is refused")
    if dtype.kind not in "biufcU" or dtype.itemsize == 0:  # e.g. |V0 of shape 1e10 x 1e10: no bytes, no data
        raise ModelFileError(f"{path}: {name} has dtype {dtype.str}, not numbers or text")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        raise ModelFileError(f"{path}: {name} declares shape {shape} of {dtype} ({nbytes} bytes), more than {limit}")
    data = member.read(nbytes)
    if len(data) != nbytes:
        raise ModelFileError(f"{path}: {name} is truncated ({len(data)} of {nbytes} bytes)")
    if member.read(1):
        raise ModelFileError(f"{path}: {name} is longer than its header declares")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran_order else "C")
