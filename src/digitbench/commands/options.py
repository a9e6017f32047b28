"""What the subcommands share: the one-line parser, option types, common options, JSON.

Only the ``commands`` layer imports this module (and argparse); the library below it
never sees an argparse namespace's types.
"""

import argparse
import ctypes
import importlib.util
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..backends import BACKENDS, DEFAULT_BACKEND
from ..data import DATASETS, RAW_SIZES
from ..datasets import load_mnist
from ..errors import ForeignFileError, UsageError
from ..files import check_destination
from ..model import load_model
from ..networks import NETWORKS
from ..recipe import MAX_SEED
from ..threads import THREADS_PER_CORE, most_threads

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


def non_negative_int(text):
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
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


def fraction(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be a fraction in (0, 1], e.g. 0.97")
    return value


def thread_count(text):
    """argparse type for ``--threads``: a whole number from 1 to :func:`most_threads`."""
    return at_most(most_threads(), f"{THREADS_PER_CORE} threads for each of this machine's "
                                    f"{os.cpu_count() or 1} cores")(text)


#: Values numba accepts for NUMBA_THREADING_LAYER, and the module each needs (None: any).
THREADING_LAYERS = {"default": None, "safe": "tbbpool", "threadsafe": None, "forksafe": None,
                    "workqueue": None, "omp": "omppool", "tbb": "tbbpool"}


def check_environment(environ=os.environ):
    """The environment variables read by numba and matplotlib, checked once before any command.

    ``NUMBA_NUM_THREADS`` must be a whole number from 1 to :func:`most_threads`;
    ``NUMBA_THREADING_LAYER`` a layer numba has and this installation can load. A bad
    value is one :class:`~digitbench.errors.UsageError` line naming the variable. When
    numba could cache its compiled kernels nowhere (a read-only installation and a
    read-only home folder), ``NUMBA_CACHE_DIR`` is pointed at a private temporary
    folder. (``MPLBACKEND`` needs no check: figures are always drawn with Agg, see
    :func:`digitbench.plots.import_matplotlib`.)
    """
    threads = environ.get("NUMBA_NUM_THREADS")
    if threads is not None:
        try:
            value = int(threads)
        except ValueError:
            value = 0
        if not 1 <= value <= most_threads():
            raise UsageError(f"environment variable NUMBA_NUM_THREADS={threads!r}: must be a whole number from 1 "
                             f"to {most_threads()}; unset it, or use --threads")
    layer = environ.get("NUMBA_THREADING_LAYER")
    if layer is not None:
        if layer not in THREADING_LAYERS:
            raise UsageError(f"environment variable NUMBA_THREADING_LAYER={layer!r}: numba has no such threading "
                             f"layer ({', '.join(THREADING_LAYERS)}); unset it")
        if THREADING_LAYERS[layer] and not _loads(THREADING_LAYERS[layer]):
            raise UsageError(f"environment variable NUMBA_THREADING_LAYER={layer!r}: this installation cannot load "
                             f"it (its library is missing); unset it or choose workqueue")
    if "NUMBA_CACHE_DIR" not in environ and not any(map(_writable, _numba_cache_folders())):
        environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"digitbench-numba-cache-{os.getuid()}")


def _loads(module):
    """Whether numba's threading-layer extension ``module`` loads (the library it links,
    TBB or OpenMP, is present); tried with ctypes, so that numba is not imported yet."""
    try:
        spec = importlib.util.find_spec(f"numba.np.ufunc.{module}")
        ctypes.CDLL(spec.origin)
    except (ImportError, AttributeError, OSError):
        return False
    return True


def _numba_cache_folders():
    """Where numba would cache the kernels: beside their source, else in the user's cache."""
    spec = importlib.util.find_spec("digitbench.kernels")
    source = Path(next(iter(spec.submodule_search_locations)))
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return source / "__pycache__", Path(cache_home) / "numba"


def _writable(folder):
    """Whether a file could be created in ``folder`` (or in the nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


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


def check_out_dir(path, names, option="--out-dir"):
    """Check, before any work, that the files ``names`` can be written in folder ``path``.

    A folder that does not exist yet is not created here (a command refused later must
    leave nothing behind): its nearest existing parent must accept a new entry.
    :func:`make_out_dir` creates it just before the first file is written.
    """
    path = Path(path)
    if path.is_dir():
        for name in names:
            check_destination(path / name, option)
        return
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} is not a folder")
    check_destination(parent / path.relative_to(parent).parts[0], option)  # a new entry there, tried


def make_out_dir(path, option="--out-dir"):
    """Create the folder ``path`` (parents too), once the command's work is done and its
    files are about to be written; one UsageError line if it cannot be. Returns the Path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot create the folder ({e.strerror or e})") from None
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


def add_network_option(parser, default="mlp", help=None):
    """``--network {mlp,cnn}``: the network a command trains, checks or times.

    ``default`` None leaves the choice to the command (``train`` takes it from its
    recipe, or from the checkpoint it resumes)."""
    parser.add_argument("--network", choices=list(NETWORKS), default=default,
                        help=help or f"the network: mlp (784-128-64-10) or cnn (two convolutions, two dense "
                                     f"layers) (default: {default})")


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
