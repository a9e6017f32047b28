"""The one place where model and checkpoint metadata are checked: types, ranges, sizes.

A model or checkpoint file (:mod:`digitbench.model_io`) carries JSON metadata next to
its arrays. Everything in it is checked here when the file is loaded, against a schema
per key, so that an edited or hostile file ends in one line naming the key
(:class:`~digitbench.errors.ModelFileError`) instead of a traceback later. A checkpoint
is also checked for being whole (its step, losses and generator state agree with each
other) and, by :func:`check_resume`, for belonging to the run that resumes it
(:class:`~digitbench.errors.UsageError`).

A file records its network (``network``: "mlp" or "cnn"; a file without the key is an
MLP's, as every file was before the CNN), and its arrays are checked against that
network's declaration in :mod:`digitbench.networks`: names, shapes, dtype, finiteness.
"""

import json
import math

import numpy as np

from .backends import BACKENDS
from .data import DATASETS
from .errors import DigitbenchError, ModelFileError, UsageError
from .networks import NETWORKS
from .params import LAYER_SIZES
from .recipe import DTYPES, MAX_EPOCHS, MAX_HISTORY_CHARS, MAX_SEED, RECIPES, Recipe

MODEL_FORMAT = "digitbench-model"
CHECKPOINT_FORMAT = "digitbench-checkpoint"
FORMAT_VERSION = 1
#: The longest metadata a file may hold, in characters of JSON: the history, and room for the rest.
MAX_META_CHARS = MAX_HISTORY_CHARS + 64 * 1024
#: The metadata is a NumPy unicode string, which stores 4 bytes a character (UTF-32):
#: the largest metadata member a loader reads, in bytes.
MAX_META_BYTES = 4 * MAX_META_CHARS
MAX_TEXT = 1000  # characters of a name or path in the metadata


def _whole(lo, hi=None):
    def check(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
    return check


def _real(lo=-math.inf, hi=math.inf):
    def check(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    return check


def _optional(check):
    return lambda v: v is None or check(v)


def _one_of(choices):
    return lambda v: isinstance(v, str) and v in choices


def _text(v):
    return isinstance(v, str) and len(v) <= MAX_TEXT


_fraction = _real(0, 1)
#: An epoch's record in a history (as :func:`digitbench.train.train` writes it).
HISTORY_RECORD = {
    "epoch": (_whole(1, MAX_EPOCHS), "a whole number of epochs"),
    "loss": (_real(0), "a finite non-negative number"),
    "train_accuracy": (_fraction, "a fraction in [0, 1]"),
    "test_accuracy": (_fraction, "a fraction in [0, 1]"),
    "seconds": (_real(0), "a finite non-negative number"),
    "lr": (_real(0), "a finite non-negative number"),
}


def _history(v):
    return (isinstance(v, list) and len(v) <= MAX_EPOCHS
            and all(isinstance(r, dict) and set(r) == set(HISTORY_RECORD)
                    and all(check(r[k]) for k, (check, _) in HISTORY_RECORD.items()) for r in v))


def _config(v):
    if not isinstance(v, dict) or not set(v) <= set(Recipe.__dataclass_fields__):
        return False
    try:
        Recipe(**v)
    except DigitbenchError:
        return False
    return True


def _rng_state(v):
    if not isinstance(v, dict) or v.get("bit_generator") != "PCG64":
        return False
    try:
        np.random.default_rng().bit_generator.state = v
    except (TypeError, ValueError, KeyError, OverflowError):
        return False
    return True


def _cli(v):
    kinds = {"recipe": _one_of(RECIPES), "dataset": _one_of(DATASETS), "out": _optional(_text),
             "backend": _one_of(BACKENDS)}
    return isinstance(v, dict) and set(v) <= set(kinds) and all(kinds[k](x) for k, x in v.items())


#: key -> (check, what it must be); every key is optional in a model file.
MODEL_FIELDS = {
    "dtype": (_one_of(DTYPES), f"one of {', '.join(DTYPES)}"),
    "network": (_one_of(NETWORKS), f"one of {', '.join(NETWORKS)}"),
    "backend": (_text, "a name"),
    "seed": (_optional(_whole(0, MAX_SEED)), "a whole number from 0 to 2**32 - 1"),
    "dataset": (_one_of(DATASETS), f"one of {', '.join(DATASETS)}"),
    "test_accuracy": (_optional(_fraction), "a fraction in [0, 1]"),
    "recipe": (_optional(_one_of(RECIPES)), f"one of {', '.join(RECIPES)}"),
    "config": (_config, "a training recipe's settings, each in its range"),
    "history": (_history, f"a list of at most {MAX_EPOCHS} epoch records"),
}
#: key -> (check, what it must be); every key is required in a checkpoint but ``cli``.
CHECKPOINT_FIELDS = {
    "dtype": MODEL_FIELDS["dtype"],
    "network": MODEL_FIELDS["network"],
    "epoch": (_whole(1, MAX_EPOCHS), "a whole number of epochs"),
    "step": (_whole(0), "a whole number of steps"),
    "rng_state": (_rng_state, "NumPy's PCG64 generator state"),
    "train_clock": (_real(0), "a finite non-negative number"),
    "eval_clock": (_real(0), "a finite non-negative number"),
    "epoch_start_clock": (_real(0), "a finite non-negative number"),
    "reached_at": (_optional(_real(0)), "a finite non-negative number or null"),
    "test_acc": (_optional(_fraction), "a fraction in [0, 1] or null"),
    "history": MODEL_FIELDS["history"],
    "config": MODEL_FIELDS["config"],
    "n_train": (_whole(1), "a positive whole number"),
    "steps_per_epoch": (_whole(1), "a positive whole number"),
    "backend": (_text, "a name"),
    "cli": (_cli, "the command line's recipe, dataset, out and backend"),
}


def parse_meta(path, meta_array, kind=MODEL_FORMAT):
    """The metadata member (a 0-d unicode array) as a dict, its format checked.

    Raises ModelFileError for anything but this kind's format, version, layer sizes.
    """
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise ModelFileError(f"{path}: metadata is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except (ValueError, RecursionError) as e:  # ValueError: bad JSON, or an integer of 4,300+ digits
        raise ModelFileError(f"{path}: metadata is not valid JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        what = "model" if kind == MODEL_FORMAT else "checkpoint"
        is_checkpoint = isinstance(meta, dict) and meta.get("format") == CHECKPOINT_FORMAT
        hint = " (it is a checkpoint: pass it to `train --resume`)" if is_checkpoint else ""
        raise ModelFileError(f"{path}: not a digitbench {what} (metadata lacks format {kind!r}){hint}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {meta.get('format_version')!r} is not supported "
                             f"(this digitbench reads {FORMAT_VERSION})")
    network = meta.get("network", "mlp")
    if not (isinstance(network, str) and network in NETWORKS):
        raise ModelFileError(f"{path}: unknown network {str(network)[:MAX_TEXT]!r} in metadata "
                             f"(this digitbench reads {', '.join(NETWORKS)})")
    if network == "mlp" and meta.get("layer_sizes") != list(LAYER_SIZES):
        raise ModelFileError(f"{path}: layer sizes {meta.get('layer_sizes')} differ from {list(LAYER_SIZES)}")
    if meta.get("dtype") not in DTYPES:
        raise ModelFileError(f"{path}: unsupported dtype {meta.get('dtype')!r} in metadata")
    fields, required = ((MODEL_FIELDS, ()) if kind == MODEL_FORMAT
                        else (CHECKPOINT_FIELDS, set(CHECKPOINT_FIELDS) - {"cli", "network"}))
    missing = sorted(k for k in required if k not in meta)
    if missing:
        raise ModelFileError(f"{path}: incompatible checkpoint: it lacks {', '.join(missing)}")
    for key, (check, what) in fields.items():
        if key in meta and not check(meta[key]):
            raise ModelFileError(f"{path}: metadata {key} has the wrong type or range: it must be {what}")
    trained = meta.get("config", {}).get("network", "mlp")
    if trained != network:
        raise ModelFileError(f"{path}: its metadata says network {network!r} but its recipe trained the {trained}")
    return meta


def file_network(meta):
    """The network a file's metadata (checked by :func:`parse_meta`) records: "mlp" without the key."""
    return meta.get("network", "mlp")


def member_names(network, prefix=""):
    """The names of ``network``'s parameter arrays in a file, in order, each after ``prefix``
    ("v" for a checkpoint's velocities): ("W1", "b1", ...) as declared in :mod:`digitbench.networks`."""
    return tuple(f"{prefix}{name}" for name in NETWORKS[network].param_shapes)


def check_arrays(path, raw, network, dtype, prefix=""):
    """``raw``'s arrays of ``network`` (``prefix`` before each name) as its parameter type.

    Each must have its declared shape (:mod:`digitbench.networks`), the file's ``dtype``
    (float32 or float64) and only finite values; ModelFileError naming the first that
    does not. The arrays returned are writable native-byte-order copies.
    """
    declared = NETWORKS[network]
    arrays = []
    for name, shape in zip(member_names(network, prefix), declared.param_shapes.values()):
        a = raw[name]
        if a.dtype.name not in ("float32", "float64"):
            raise ModelFileError(f"{path}: {name} has dtype {a.dtype}, expected float32 or float64")
        if a.dtype.name != dtype:
            raise ModelFileError(f"{path}: {name} has dtype {a.dtype} but the file says {dtype}")
        if a.shape != shape:
            raise ModelFileError(f"{path}: {name} has shape {a.shape}, expected {shape} (the {network}'s)")
        if not np.isfinite(a).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
        arrays.append(np.array(a, dtype=a.dtype.newbyteorder("="), order="C"))  # a writable native copy
    return declared.params_type(*arrays)


def check_checkpoint(path, meta, epoch_losses):
    """A checkpoint's parts agree with each other; ModelFileError naming the first that does not."""
    recipe = Recipe(**meta["config"])
    steps_per_epoch = math.ceil(meta["n_train"] / recipe.batch_size)
    if meta["steps_per_epoch"] != steps_per_epoch:
        raise ModelFileError(f"{path}: incompatible checkpoint: {meta['steps_per_epoch']} steps an epoch, "
                             f"but {meta['n_train']} images in batches of {recipe.batch_size} make {steps_per_epoch}")
    if not (meta["epoch"] <= recipe.epochs and meta["step"] < steps_per_epoch):
        raise ModelFileError(f"{path}: incompatible checkpoint: epoch {meta['epoch']}, step {meta['step']} is "
                             f"outside its run ({recipe.epochs} epochs of {steps_per_epoch} steps)")
    if len(epoch_losses) != meta["step"]:
        raise ModelFileError(f"{path}: incompatible checkpoint: its losses do not match its step")
    if len(meta["history"]) != meta["epoch"] - 1:
        raise ModelFileError(f"{path}: incompatible checkpoint: its history does not match its epoch")
    clock = meta["train_clock"]
    if meta["epoch_start_clock"] > clock:
        raise ModelFileError(f"{path}: incompatible checkpoint: its epoch started at {meta['epoch_start_clock']} s "
                             f"of training, after its {clock} s of training so far")
    if meta["reached_at"] is not None:
        if recipe.target_accuracy is None:
            raise ModelFileError(f"{path}: incompatible checkpoint: it records reaching a target it does not have")
        if meta["reached_at"] > clock:
            raise ModelFileError(f"{path}: incompatible checkpoint: it reached its target at {meta['reached_at']} s "
                                 f"of training, after its {clock} s of training so far")


def check_resume(state, recipe, n_train, backend, chunk_starts):
    """Refuse a checkpoint (a TrainState) that does not belong to this run: UsageError.

    ``chunk_starts``: the steps at which this run's chunks start (where it saves).
    """
    for key, value in recipe.as_dict().items():
        saved = getattr(state.recipe, key)
        if saved != value:
            raise UsageError(f"incompatible checkpoint: it was made with {key} = {saved!r}, this run has {value!r}")
    if state.n_train != n_train:
        raise UsageError(f"incompatible checkpoint: it was made on {state.n_train} training images, "
                         f"this data set has {n_train}")
    if state.step not in chunk_starts:
        hint = (f" (it was made by the {state.backend} backend, which cuts an epoch differently from "
                f"the {backend.name} backend: resume it with --backend {state.backend})"
                if state.backend != backend.name else "")
        raise UsageError(f"incompatible checkpoint: step {state.step} is not where this run would have saved one"
                         + hint)
