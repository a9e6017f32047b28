"""``digitbench train``: train the network, save the model; Ctrl-C or SIGTERM keeps the run.

Ctrl-C (or SIGTERM) during training leaves the state at the last chunk boundary (see
:mod:`digitbench.train`); it is written next to the model (``model.checkpoint.npz`` for
``--out model.npz``, or ``--checkpoint PATH``) and read back with ``--resume PATH``.
A resumed run takes every setting from its checkpoint; an option that contradicts it is
an error, and so is a missing or foreign file: ``--resume`` never starts afresh.

A resumed run saves its model where ``--out`` says, else under the name its checkpoint
recorded but in the checkpoint's own folder (said before training); no output
replaces an existing file that is not a digitbench model or checkpoint. When the final
save fails (a full disk, SIGTERM or Ctrl-C while writing), the weights are written to
the temporary folder instead and one line says where.

Exit status: 0 done; 1 an error (one line on stderr); 130 Ctrl-C and 143 SIGTERM (the
checkpoint saved). A closed standard output stops only the printing
(:func:`digitbench.cli.main`).
"""

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from ..backends import DEFAULT_BACKEND
from ..datasets import load_mnist, split_validation
from ..errors import OutputError, UsageError
from ..plots import plot_history
from ..recipe import DEFAULT_RECIPES, RECIPE_OPTIONS, RECIPES, SCHEDULES, Recipe
from ..errors import Terminated
from ..files import TERMINATING, check_destination, check_distinct, terminating_signals_raise
from ..model_io import check_replaceable
from ..train import TARGET_CHECKS_PER_EPOCH, TrainingInterrupted, TrainState, train
from .options import (add_backend_option, add_data_options, add_json_option, add_network_option, batch_size,
                      fraction, positive_float, positive_int, print_json, seed_value, show_progress)
from .runtime import add_threads_option, load_backend, threaded

#: Options whose value a checkpoint fixes (argparse names), besides the recipe's own.
RESUMED = ("recipe", "seed", "dtype", "target_accuracy", "dataset")
DEFAULTS = dict(recipe="seed", seed=0, dtype="float32", dataset="mnist", out="model.npz")
EXIT_INTERRUPTED = 130


def add_parser(sub):
    seed = RECIPES["seed"]
    p = sub.add_parser("train", help="train the network and save model.npz (default: the seed recipe on numba)")
    add_backend_option(p)
    add_data_options(p)
    add_network_option(p, default=None, help="the network to train: mlp (the default, 784-128-64-10) or cnn (two "
                                             "5x5 convolutions with max pooling, then two dense layers)")
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="named defaults for the options below: seed (the mlp's default: 30 epochs of momentum SGD "
                        "with a decaying learning rate), fast (the mlp: 1 epoch, centred inputs, tuned to reach 97%%) "
                        "or cnn (the cnn's default: 4 epochs of momentum SGD on a cosine schedule)")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training set (seed: {seed['epochs']})")
    p.add_argument("--batch-size", type=batch_size, help=f"samples per SGD step (seed: {seed['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"initial learning rate (seed: {seed['lr']})")
    p.add_argument("--momentum", type=float, help=f"heavy-ball momentum in [0, 1) (seed: {seed['momentum']})")
    p.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (seed: {seed['schedule']})")
    p.add_argument("--decay", type=float, help="decay of the inverse-time schedule, or the linear-floor one's fall per epoch "
                        f"as a fraction of --lr (fast: {RECIPES['fast']['decay']}) (seed: {seed['decay']})")
    p.add_argument("--center", action=argparse.BooleanOptionalAction,
                   help="train as on centred pixels, x minus the training set's mean image; the saved model still "
                        "reads raw pixels (fast: on, seed: off; the mlp only)")
    p.add_argument("--seed", type=seed_value, help="seeds the initial weights and the shuffling (default: 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    p.add_argument("--target-accuracy", type=fraction, help="test accuracy whose training time to record, e.g. 0.97")
    p.add_argument("--stop-at-target", action="store_true", help="stop as soon as --target-accuracy is reached")
    p.add_argument("--out", help="where to save the trained model (default: model.npz; '' saves none)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint, with its settings")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="where Ctrl-C saves the run (default: beside --out, model.checkpoint.npz)")
    p.add_argument("--validation", type=positive_int, metavar="N",
                   help="hold out the last N training images as a validation set (e.g. 10000): its accuracy is "
                        "recorded every epoch and checked against --target-accuracy; the test set is only reported")
    p.add_argument("--plot", metavar="PATH",
                   help="also write the loss and accuracy curves to PATH (PNG) at the end")
    add_json_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_option(p)
    # None = not given: a resumed run takes these from its checkpoint
    p.set_defaults(func=threaded(run), backend=None, dataset=None)


def check_outputs(args):
    """Every file this run may write, checked before any work: the model, the Ctrl-C
    checkpoint and the plot, each writable and no two the same file."""
    outputs = {"--out": args.out} if args.out else {}
    outputs["--checkpoint"] = args.checkpoint or default_checkpoint_path(args.out)
    if args.plot:
        outputs["--plot"] = args.plot
    for option, path in outputs.items():
        check_destination(path, option)
        if option != "--plot":
            check_replaceable(path, option)
    options = list(outputs)
    for i, first in enumerate(options):
        for second in options[i + 1:]:
            check_distinct(outputs[first], outputs[second], first, second)


def run(args):
    resume = resolve_train_args(args)  # fills the options left unset, from a checkpoint or the defaults
    recipe = Recipe.named(args.recipe, **{k: getattr(args, k) for k in RECIPE_OPTIONS}, seed=args.seed,
                          dtype=args.dtype, target_accuracy=args.target_accuracy,
                          stop_at_target=args.stop_at_target)  # checked before the data are loaded
    check_outputs(args)
    backend = load_backend(args.backend, recipe.network)
    data = load_mnist(args.data_dir, args.dataset, progress=show_progress(args))
    validation = None
    if args.validation:
        data, validation = split_validation(data, args.validation)

    def report(h):
        print(f"epoch {h['epoch']:>3}  loss {h['loss']:.4f}  train {100 * h['train_accuracy']:6.2f}%  "
              + (f"valid {100 * h['validation_accuracy']:6.2f}%  " if "validation_accuracy" in h else "")
              + f"test {100 * h['test_accuracy']:6.2f}%  lr {h['lr']:.5f}  {h['seconds']:.2f} s")

    try:
        with terminating_signals_raise():  # SIGTERM, SIGHUP, SIGXCPU: saved as Ctrl-C is
            result = train(backend, data, recipe=recipe, progress=show_progress(args), on_epoch=report, resume=resume,
                           validation=validation)
    except TrainingInterrupted as stop:  # keep the run, say how to continue it
        save_interrupted(args, stop.checkpoint, stop.cause)
        return stop.cause.status if isinstance(stop.cause, Terminated) else EXIT_INTERRUPTED
    target = ""
    if args.target_accuracy is not None:
        reached = result.seconds_to_target
        where = "validation" if result.validation_images else "test"
        checked = f"{where} accuracy checked {TARGET_CHECKS_PER_EPOCH} times an epoch"
        target = (f"; first check at or above {100 * args.target_accuracy:.2f}% after {reached:.2f} s of training "
                  f"({checked})" if reached is not None
                  else f"; never reached {100 * args.target_accuracy:.2f}% ({checked})")
    valid = result.summary()["validation_accuracy"]
    valid = "" if valid is None else f"validation accuracy {100 * valid:.2f}% ({result.validation_images} held out), "
    print(f"{args.backend}: {valid}test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs_run} epoch{'' if result.epochs_run == 1 else 's'}, "
              f"{result.train_seconds:.2f} s of training (+{result.eval_seconds:.2f} s evaluating"
              + (f", +{result.warmup_seconds:.2f} s compiling or loading kernels" if result.warmup_seconds else "")
              + f"){target}")
    if result.threads:
        print(f"threads: {result.threads['threads']} of {result.threads['max_threads']} "
                  f"({result.threads['reason']})")
    if args.out:
        status = save_model_or_rescue(result, args)
        if status:
            return status
    if args.plot:
        title = f"{args.recipe} recipe, {args.backend} backend"
        print(f"wrote {plot_history(result.history, args.plot, title=title)}")
    if args.json:
        print_json({**result.summary(), "recipe": args.recipe, "dataset": args.dataset})
    return 0


def save_model_or_rescue(result, args):
    """Save the trained model to ``--out``; if that fails, keep the weights anyway.

    A full disk, a file too large, an I/O error, SIGTERM or Ctrl-C during the final
    save leave ``--out`` as it was (:func:`~digitbench.files.write_file`); the model is
    then written to a file of its own in the temporary folder, with SIGTERM and Ctrl-C
    held off, and one line on stderr says where. Returns the exit status: 0 saved,
    else 1, 130 or 143 as for the cause.
    """
    meta = dict(dataset=args.dataset, recipe=args.recipe)
    try:
        result.save(args.out, **meta)
        print(f"saved {args.out}")
        return 0
    except (OutputError, KeyboardInterrupt) as e:
        cause = e
    status = cause.status if isinstance(cause, Terminated) else \
        EXIT_INTERRUPTED if isinstance(cause, KeyboardInterrupt) else 1
    reason = cause.words if isinstance(cause, Terminated) else \
        "interrupted" if isinstance(cause, KeyboardInterrupt) else str(cause)
    rescue = Path(tempfile.gettempdir()) / f"digitbench-rescued-{os.getpid()}-{Path(args.out).name[:100]}"
    held = {signal.SIGINT, *TERMINATING}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        result.save(rescue, **meta)
        saved = f"the trained model was saved instead as {rescue}; move it where it belongs"
    except OutputError as e:
        saved = f"nor could it be saved as {rescue} ({e}): the trained weights are lost"
        status = 1
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    print(f"digitbench train: could not save {args.out} ({reason}); {saved}", file=sys.stderr, flush=True)
    return status


def default_checkpoint_path(out):
    """``model.npz`` -> ``model.checkpoint.npz``; without a model file, in the current folder.

    The stem is shortened when needed so that the name stays within 255 bytes (the
    limit of common file systems), however long a name ``--out`` was given.
    """
    if not out:
        return Path("digitbench.checkpoint.npz")
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npz") else out.name
    while len(os.fsencode(f"{stem}.checkpoint.npz")) > NAME_MAX:
        stem = stem[:-1]
    return out.with_name(f"{stem}.checkpoint.npz")


NAME_MAX = 255


def resolve_train_args(args):
    """Fill the unset options of ``args`` in place; return the TrainState to resume, or None.

    Without ``--resume`` the defaults are those of :data:`DEFAULTS`. With it, every
    setting comes from the checkpoint; explicit options must agree with it.
    """
    if not getattr(args, "resume", None):
        if getattr(args, "recipe", None) is None and getattr(args, "network", None):
            args.recipe = DEFAULT_RECIPES[args.network]  # --network cnn alone: the cnn recipe
        for key, value in {**DEFAULTS, "backend": DEFAULT_BACKEND}.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
        return None
    state, meta = TrainState.load(args.resume)
    cli = meta.get("cli", {})
    saved = {**state.recipe.as_dict(), "recipe": cli.get("recipe", DEFAULTS["recipe"]),
             "dataset": cli.get("dataset", DEFAULTS["dataset"])}
    for key in (*RECIPE_OPTIONS, *RESUMED):
        given = getattr(args, key, None)
        if given is not None and given != saved[key]:
            option = key.replace('_', '-')
            option = (f"--{option}" if given else f"--no-{option}") if isinstance(given, bool) else f"--{option} {given}"
            raise UsageError(f"{option} contradicts the checkpoint {args.resume}, "
                             f"made with {saved[key]}; a resumed run keeps its settings")
        setattr(args, key, saved[key])
    if args.stop_at_target and not state.recipe.stop_at_target:
        raise UsageError(f"--stop-at-target contradicts the checkpoint {args.resume}, made without it")
    args.stop_at_target = state.recipe.stop_at_target
    args.backend = args.backend or cli.get("backend") or DEFAULT_BACKEND
    if args.out is None:  # the recorded name, in the checkpoint's own folder: never a path the file chooses
        recorded = cli.get("out", DEFAULTS["out"])
        args.out = str(Path(args.resume).parent / Path(recorded).name) if recorded else ""
    args.checkpoint = args.checkpoint or str(args.resume)
    where = f"; the model will be saved as {args.out}" if args.out else "; no model will be saved (--out '')"
    print(f"resuming {args.resume}: epoch {state.epoch}, step {state.step} of {state.steps_per_epoch}{where}")
    return state


def save_interrupted(args, state, cause=None):
    """Write the checkpoint ``state`` atomically and say on stderr, in one line, how to continue."""
    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path(args.out)
    state.save(path, cli=dict(recipe=args.recipe, dataset=args.dataset, out=args.out, backend=args.backend))
    again = f"digitbench train --resume {path}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
    what = cause.words if isinstance(cause, Terminated) else "interrupted"
    print(f"digitbench train: {what} in epoch {state.epoch} at step {state.step} of {state.steps_per_epoch}; "
          f"saved the checkpoint {path}; continue with: {again}", file=sys.stderr, flush=True)
    return path
