"""What the subcommands share: the one-line parser, option types, common options, JSON.

Only the ``commands`` layer imports this module (and argparse); the library below it
never sees an argparse namespace's types.
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..backends import BACKENDS, DEFAULT_BACKEND
from ..data import DATASETS, RAW_SIZES
from ..datasets import load_mnist
from ..errors import ForeignFileError, UsageError
from ..model import load_model
from ..params import LAYER_SIZES
from ..recipe import MAX_SEED

#: Training images of MNIST and of Fashion-MNIST alike: the largest batch there is.
TRAIN_IMAGES = RAW_SIZES["train-labels-idx1-ubyte"] - 8  # 60,000
TEST_IMAGES = RAW_SIZES["t10k-labels-idx1-ubyte"] - 8  # 10,000


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error here."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def whole_number(text):
    """``text`` as an int, or argparse's one-line error."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text):
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def seed_value(text):
    """argparse type for ``--seed``: a whole number in 0 .. 2**32 - 1."""
    value = whole_number(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is outside 0 .. {MAX_SEED} (seeds are 32-bit unsigned)")
    return value


def batch_size(text):
    """argparse type for a training batch size: 1 .. the 60,000 training images."""
    value = positive_int(text)
    if value > TRAIN_IMAGES:
        raise argparse.ArgumentTypeError(f"{text} is more than the {TRAIN_IMAGES:,} training images of MNIST and "
                                         f"Fashion-MNIST; {TRAIN_IMAGES} is the largest (one step per epoch)")
    return value


def at_most(limit, what):
    """argparse type: a positive whole number at most ``limit`` (``what`` says why)."""
    def parse(text):
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text} is more than {limit:,}, {what}")
        return value
    return parse


def machine_memory():
    """Bytes of physical memory (``SC_PHYS_PAGES * SC_PAGE_SIZE``), or None where unknown."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def bytes_per_sample(itemsize):
    """Memory one sample of a batch takes in a training step, from the layer sizes.

    The input row and each layer's activations (784 + 128 + 64 + 10 values), their
    gradients, and as much again for the temporaries of the matrix products: four
    copies of every value, ``itemsize`` bytes each.
    """
    return 4 * sum(LAYER_SIZES) * itemsize


def check_memory(count, each, what):
    """Refuse ``count`` items of ``each`` bytes when they would not fit in this machine's memory.

    ``what`` starts the message: the option and its value, and what the items are.
    """
    memory = machine_memory()
    if memory is not None and count * each > memory:
        raise UsageError(f"{what}: needs about {_size(count * each)} ({count:,} x {each:,} bytes), "
                         f"more than this machine's {_size(memory)} of memory")


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def fraction(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be a fraction in (0, 1], e.g. 0.97")
    return value


#: Where ``digitbench train`` saves its model, and where evaluate, predict and plot look for it.
DEFAULT_MODEL = "model.npz"


def add_model_option(parser):
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a .npz file written by `digitbench train` (default: {DEFAULT_MODEL})")


def open_model(path):
    """The :class:`~digitbench.model.Model` at ``path`` (``--model``), or one line saying how to get one."""
    if not Path(path).exists():
        raise UsageError(f"{path}: no such file; train one with `digitbench train` or pass --model")
    return load_model(path)


def out_dir(text):
    """argparse type for ``--out-dir``: the folder, created (parents too) if missing.

    A folder that cannot be created (a file in the way, no permission) is left to the
    command's :func:`~digitbench.files.check_destination`, which names the reason in
    one line before any work starts.
    """
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return path


def add_data_dir_option(parser):
    parser.add_argument("--data-dir", help="folder with the four IDX files (default: $DIGITBENCH_DATA, else the cache)")


def add_data_options(parser):
    add_data_dir_option(parser)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="data set (default: mnist)")


#: Words in a --backend value that mean a peer library, which only ``bench --peers`` runs.
PEER_WORDS = ("torch", "jax", "sklearn", "scikit")


def peer_hint(name):
    """"; PyTorch ... are contenders of bench --peers" when ``name`` means a peer library, else ""."""
    if not any(word in name.lower() for word in PEER_WORDS):
        return ""
    return ("; PyTorch, torch.compile, JAX and scikit-learn are not backends but contenders "
            "that `digitbench bench --peers` times beside them")


def backend_name(text):
    """``--backend``'s value: one of BACKENDS; a peer library's name is told where it runs."""
    if text in BACKENDS:
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(map(repr, BACKENDS))}){peer_hint(text)}")


def add_backend_option(parser, default=DEFAULT_BACKEND):
    parser.add_argument("--backend", type=backend_name, default=default, metavar="{" + ",".join(BACKENDS) + "}",
                        help=f"implementation to run (default: {default})")


def add_json_option(parser):
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def print_json(record):
    """The machine-readable summary: one JSON object on the last line of stdout.

    Always valid JSON (RFC 8259 has no NaN or Infinity): a non-finite number becomes
    ``null``, the same "no value" as ``seconds_to_target`` when the target was missed.
    (Models whose outputs are not finite are refused before anything is printed, so
    a null here is never a silently wrong score.)
    """
    print(json.dumps(plain_json(record), allow_nan=False))


def plain_json(value):
    """``value`` with NumPy scalars and arrays made plain, and NaN or infinities made None."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_model_data(args, meta):
    """The data set to judge a model on (evaluate, plot): ``--dataset``, else the model's.

    When the files found are another data set's, the message says which data set the
    model records, so that "this is MNIST's file, not Fashion-MNIST's" has its reason.
    """
    dataset = args.dataset or meta.get("dataset") or "mnist"
    try:
        return dataset, load_mnist(args.data_dir, dataset, progress=show_progress(args))
    except ForeignFileError as e:
        if args.dataset:
            raise
        raise ForeignFileError(f"{e} (the model {args.model} was trained on {dataset}; "
                               f"--dataset chooses another)") from None


def show_progress(args):
    return not getattr(args, "quiet", False) and sys.stderr.isatty()
