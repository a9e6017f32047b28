"""``digitbench train``: train the network, save the model, Ctrl-C keeps the run."""

import numpy as np

from ..backends import get_backend
from ..checkpointing import default_checkpoint_path, resolve_train_args, save_interrupted
from ..datasets import load_mnist
from ..files import check_destination, check_distinct
from ..model_io import save_model
from ..plots import plot_history
from ..train import RECIPES, SCHEDULES, TrainingInterrupted, check_config, train
from .options import (add_backend_option, add_data_options, add_json_option, batch_size, check_epochs, fraction,
                      positive_float, positive_int, print_json, seed_value, show_progress)


def add_parser(sub):
    seed = RECIPES["seed"]
    p = sub.add_parser("train", help="train the network (default: the seed recipe on the fastest backend)")
    add_backend_option(p)
    add_data_options(p)
    p.add_argument("--recipe", choices=list(RECIPES),
                   help="named defaults for the options below (default: seed, the write-up's recipe)")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training set (seed: {seed['epochs']})")
    p.add_argument("--batch-size", type=batch_size, help=f"samples per SGD step (seed: {seed['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"initial learning rate (seed: {seed['lr']})")
    p.add_argument("--momentum", type=float, help=f"heavy-ball momentum in [0, 1) (seed: {seed['momentum']})")
    p.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (seed: {seed['schedule']})")
    p.add_argument("--decay", type=float, help=f"decay of the inverse-time schedule (seed: {seed['decay']})")
    p.add_argument("--seed", type=seed_value, help="seeds the initial weights and the shuffling (default: 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="(default: float32)")
    p.add_argument("--target-accuracy", type=fraction, help="test accuracy whose training time to record, e.g. 0.97")
    p.add_argument("--stop-at-target", action="store_true", help="stop as soon as --target-accuracy is reached")
    p.add_argument("--out", help="where to save the trained model (default: model.npz; '' saves none)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint, with its settings")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="where Ctrl-C saves the run (default: beside --out, model.checkpoint.npz)")
    p.add_argument("--plot", metavar="PATH",
                   help="also write the loss and accuracy curves to PATH (PNG) at the end")
    add_json_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # None = not given: a resumed run takes these from its checkpoint (see checkpointing.py)
    p.set_defaults(func=run, backend=None, dataset=None)


def check_outputs(args):
    """Every file this run may write, checked before any work: the model, the Ctrl-C
    checkpoint and the plot, each writable and no two the same file."""
    outputs = {"--out": args.out} if args.out else {}
    outputs["--checkpoint"] = args.checkpoint or default_checkpoint_path(args.out)
    if args.plot:
        outputs["--plot"] = args.plot
    for option, path in outputs.items():
        check_destination(path, option)
    options = list(outputs)
    for i, first in enumerate(options):
        for second in options[i + 1:]:
            check_distinct(outputs[first], outputs[second], first, second)


def run(args):
    resume = resolve_train_args(args)  # fills the options left unset, from a checkpoint or the defaults
    recipe = dict(RECIPES[args.recipe])
    for key in recipe:
        value = getattr(args, key, None)
        if value is not None:
            recipe[key] = value
    check_config(recipe["epochs"], recipe["batch_size"], recipe["lr"], recipe["momentum"], args.target_accuracy,
                 recipe["decay"])  # before the data are loaded: a bad option fails at once
    check_epochs(recipe["epochs"], recipe["batch_size"])
    check_outputs(args)
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
        print(f"wrote {plot_history(result.history, args.plot, title=f'{args.recipe} recipe, {args.backend} backend')}")
    if args.json:
        print_json(summary)
    return 0
