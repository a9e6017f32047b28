"""What the subcommands share: the one-line parser, option types, common options, JSON.

Only the ``commands`` layer imports this module (and argparse); the library below it
never sees an argparse namespace's types.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..backends import BACKENDS, DEFAULT_BACKEND
from ..data import DATASETS
from ..errors import UsageError
from ..model import load_model


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error here."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
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


def fraction(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} must be a fraction in (0, 1], e.g. 0.97")
    return value


def png_path(text):
    """argparse type for ``--plot PATH``: the folder must exist (checked before training)."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    return path


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
    """argparse type for ``--out-dir``: the folder, created (parents too) if missing."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot create folder {path}: {e.strerror or e}") from None
    return path


def add_data_dir_option(parser):
    parser.add_argument("--data-dir", help="folder with the four IDX files (default: $DIGITBENCH_DATA, else the cache)")


def add_data_options(parser):
    add_data_dir_option(parser)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="data set (default: mnist)")


def add_backend_option(parser, default=DEFAULT_BACKEND):
    parser.add_argument("--backend", choices=list(BACKENDS), default=default,
                        help=f"implementation to run (default: {default})")


def add_json_option(parser):
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def print_json(record):
    """The machine-readable summary: one JSON object on the last line of stdout."""
    print(json.dumps(record, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def show_progress(args):
    return not getattr(args, "quiet", False) and sys.stderr.isatty()
