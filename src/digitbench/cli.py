"""The ``digitbench`` command: train, evaluate, predict, download, and more.

Every error a user can cause reaches :func:`main` as a
:class:`~digitbench.errors.DigitbenchError` and is printed as one line on standard
error with a non-zero exit; argparse's own errors are folded into one line too.
Subcommands defined in other modules register themselves through ``add_parser`` in
:data:`COMMAND_MODULES`.
"""

import argparse
import importlib
import json
import sys

import numpy as np

from .backends import BACKENDS, DEFAULT_BACKEND
from .data import DATASETS
from .errors import DigitbenchError

#: Modules that each define ``add_parser(subparsers)`` for one more subcommand.
COMMAND_MODULES = ["digitbench.experiments", "digitbench.plots", "digitbench.bench_cli", "digitbench.gradcheck"]


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


def add_data_options(parser):
    parser.add_argument("--data-dir", help="folder with the four IDX files (default: $DIGITBENCH_DATA, else the cache)")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="data set (default: mnist)")


def add_backend_option(parser, default=DEFAULT_BACKEND):
    parser.add_argument("--backend", choices=list(BACKENDS), default=default,
                        help=f"implementation to run (default: {default})")


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


# --------------------------------------------------------------------------- train


def add_train_parser(sub):
    from .plots import png_path
    from .train import RECIPES, SCHEDULES

    seed = RECIPES["seed"]
    p = sub.add_parser("train", help="train the network (default: the seed recipe on the fastest backend)")
    add_backend_option(p)
    add_data_options(p)
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="named defaults for the options below (default: seed, the write-up's recipe)")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training set (seed: {seed['epochs']})")
    p.add_argument("--batch-size", type=positive_int, help=f"samples per SGD step (seed: {seed['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"initial learning rate (seed: {seed['lr']})")
    p.add_argument("--momentum", type=float, help=f"heavy-ball momentum in [0, 1) (seed: {seed['momentum']})")
    p.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (seed: {seed['schedule']})")
    p.add_argument("--decay", type=float, help=f"decay of the inverse-time schedule (seed: {seed['decay']})")
    p.add_argument("--seed", type=int, help="seeds the initial weights and the shuffling (default: 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    p.add_argument("--target-accuracy", type=fraction, help="test accuracy whose training time to record, e.g. 0.97")
    p.add_argument("--stop-at-target", action="store_true", help="stop as soon as --target-accuracy is reached")
    p.add_argument("--out", help="where to save the trained model (default: model.npz; '' saves none)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint, with its settings")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="where Ctrl-C saves the run (default: beside --out, model.checkpoint.npz)")
    p.add_argument("--plot", metavar="PATH", type=png_path,
                   help="also write the loss and accuracy curves to PATH (PNG) at the end")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # None = not given: a resumed run takes these from its checkpoint (see checkpointing.py)
    p.set_defaults(func=cmd_train, backend=None, dataset=None)


def cmd_train(args):
    from .backends import get_backend
    from .checkpointing import resolve_train_args, save_interrupted
    from .data import load_mnist
    from .model_io import save_model
    from .train import RECIPES, TrainingInterrupted, check_config, train

    resume = resolve_train_args(args)  # fills the options left unset, from a checkpoint or the defaults
    recipe = dict(RECIPES[args.recipe])
    for key in recipe:
        value = getattr(args, key, None)
        if value is not None:
            recipe[key] = value
    check_config(recipe["epochs"], recipe["batch_size"], recipe["lr"], recipe["momentum"], args.target_accuracy,
                 recipe["decay"])  # before the data are loaded: a bad option fails at once
    backend = get_backend(args.backend)
    data = load_mnist(args.data_dir, args.dataset, progress=show_progress(args))

    def report(h):
        print(f"epoch {h['epoch']:>3}  loss {h['loss']:.4f}  train {100 * h['train_accuracy']:6.2f}%  "
              f"test {100 * h['test_accuracy']:6.2f}%  lr {h['lr']:.5f}  {h['seconds']:.2f} s", flush=True)

    try:
        result = train(backend, data, seed=args.seed, dtype=np.dtype(args.dtype).type,
                       target_accuracy=args.target_accuracy, stop_at_target=args.stop_at_target,
                       progress=show_progress(args), on_epoch=report, resume=resume, **recipe)
    except TrainingInterrupted as stop:  # Ctrl-C: keep the run, say how to continue it
        save_interrupted(args, stop.checkpoint)
        return 130
    summary = result.summary()
    summary.update(recipe=args.recipe, dataset=args.dataset)
    target = ""
    if args.target_accuracy is not None:
        reached = result.seconds_to_target
        target = (f"; reached {100 * args.target_accuracy:.2f}% after {reached:.2f} s of training" if reached is not None
                  else f"; never reached {100 * args.target_accuracy:.2f}%")
    print(f"{args.backend}: test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs_run} epochs, "
          f"{result.train_seconds:.2f} s of training (+{result.eval_seconds:.2f} s evaluating"
          + (f", +{result.warmup_seconds:.2f} s compiling or loading kernels" if result.warmup_seconds else "")
          + f"){target}")
    if args.out:
        save_model(args.out, result.params, backend=args.backend, seed=args.seed, dataset=args.dataset,
                   test_accuracy=result.test_accuracy, recipe=args.recipe,
                   config=result.config, history=result.history)
        print(f"saved {args.out}")
    if args.plot:
        from .plots import plot_history

        print(f"wrote {plot_history(result.history, args.plot, title=f'{args.recipe} recipe, {args.backend} backend')}")
    if args.json:
        print_json(summary)
    return 0


# --------------------------------------------------------------------------- evaluate


def add_evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="test accuracy, per-class accuracy and confusion matrix of a saved model")
    p.add_argument("--model", required=True, help="a .npz file written by `digitbench train`")
    add_backend_option(p)
    p.add_argument("--data-dir", help="folder with the four IDX files (default: $DIGITBENCH_DATA, else the cache)")
    p.add_argument("--dataset", choices=DATASETS, help="data set (default: the one the model was trained on)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args):
    from .backends import get_backend
    from .data import load_mnist
    from .evaluate import evaluate, format_confusion
    from .model_io import load_model

    params, meta = load_model(args.model)
    dataset = args.dataset or meta.get("dataset", "mnist")
    data = load_mnist(args.data_dir, dataset, progress=show_progress(args))
    backend = get_backend(args.backend)
    result = evaluate(backend, params, data.test_images, data.test_labels)
    print(f"{args.model}: test accuracy {100 * result['test_accuracy']:.2f}% on {len(data.test_labels)} "
          f"{dataset} test images ({args.backend} backend)")
    print(format_confusion(result["confusion_matrix"], result["per_class_accuracy"]))
    if args.json:
        record = {k: v for k, v in result.items() if k != "predictions"}
        record.update(backend=args.backend, dataset=dataset, model=str(args.model),
                      epochs_run=meta.get("config", {}).get("epochs"), train_seconds=None, seconds_to_target=None)
        print_json(record)
    return 0


# --------------------------------------------------------------------------- predict


def add_predict_parser(sub):
    p = sub.add_parser("predict", help="classify image files (PNG, JPEG, ...) of single digits")
    p.add_argument("--model", required=True, help="a .npz file written by `digitbench train`")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_backend_option(p)
    p.add_argument("--top", type=positive_int, default=3, help="how many probabilities to show (default: 3)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args):
    from .backends import get_backend
    from .model_io import load_model
    from .predict import predict_images

    params, _ = load_model(args.model)
    probabilities = predict_images(get_backend(args.backend), params, args.images)
    records = []
    for path, p in zip(args.images, probabilities):
        top = np.argsort(p)[::-1][:min(args.top, 10)]
        print(f"{path}: {top[0]}   " + "  ".join(f"{d}: {100 * p[d]:.1f}%" for d in top))
        records.append({"image": path, "digit": int(top[0]), "probabilities": [float(x) for x in p]})
    if args.json:
        print_json({"backend": args.backend, "predictions": records})
    return 0


# --------------------------------------------------------------------------- download


def add_download_parser(sub):
    p = sub.add_parser("download", help="fetch the data set from the public mirrors (checksums verified)")
    add_data_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)


def cmd_download(args):
    from .data import resolve_data_dir
    from .download import download_dataset

    folder = download_dataset(resolve_data_dir(args.data_dir, args.dataset), args.dataset,
                              progress=show_progress(args))
    print(f"{args.dataset}: all four files present and verified in {folder}")
    return 0


# --------------------------------------------------------------------------- main


def build_parser():
    parser = OneLineParser(prog="digitbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for add in (add_train_parser, add_evaluate_parser, add_predict_parser, add_download_parser):
        add(sub)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def _version():
    from . import __version__

    return __version__


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except DigitbenchError as e:
        print(f"digitbench {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"digitbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
