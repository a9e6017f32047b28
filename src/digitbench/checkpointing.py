"""Ctrl-C and ``--resume`` for ``digitbench train``: the command-line half.

:func:`digitbench.train.train` turns Ctrl-C into :class:`~digitbench.train.TrainingInterrupted`
carrying a :class:`~digitbench.train.Checkpoint` (the state at the last chunk
boundary); here that state is written next to the model (``model.checkpoint.npz`` for
``--out model.npz``, or ``--checkpoint PATH``) in the same pickle-free format as models
(:func:`digitbench.model_io.save_checkpoint`), and read back for ``--resume PATH``.

A resumed run takes every setting from the checkpoint; an option given on the command
line that contradicts it is an error, and so is a missing or foreign file: ``--resume``
never falls back to a fresh start.
"""

import sys
from pathlib import Path

from .backends import DEFAULT_BACKEND
from .errors import UsageError
from .model_io import load_checkpoint, save_checkpoint
from .train import Checkpoint

#: Options of ``train`` whose value a checkpoint fixes (argparse names).
RECIPE_KEYS = ("epochs", "batch_size", "lr", "momentum", "schedule", "decay")
DEFAULTS = dict(recipe="seed", seed=0, dtype="float32", dataset="mnist", out="model.npz")


def default_checkpoint_path(out):
    """``model.npz`` -> ``model.checkpoint.npz``; without a model file, in the current folder."""
    if not out:
        return Path("digitbench.checkpoint.npz")
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npz") else out.name
    return out.with_name(f"{stem}.checkpoint.npz")


def resolve_train_args(args):
    """Fill the unset options of ``args`` in place; return the Checkpoint to resume, or None.

    Without ``--resume`` the defaults are those of :data:`DEFAULTS`. With it, every
    setting comes from the checkpoint; explicit options must agree with it.
    """
    if not getattr(args, "resume", None):
        for key, value in DEFAULTS.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
        if args.backend is None:
            args.backend = DEFAULT_BACKEND
        return None

    params, velocity, losses, meta = load_checkpoint(args.resume)
    config, cli = meta.get("config"), meta.get("cli")
    if not isinstance(config, dict) or not isinstance(cli, dict):
        raise UsageError(f"{args.resume}: incompatible checkpoint: it lacks the run's settings")
    saved = {**{k: config.get(k) for k in RECIPE_KEYS}, "seed": config.get("seed"), "dtype": config.get("dtype"),
             "target_accuracy": config.get("target_accuracy"), "recipe": cli.get("recipe"),
             "dataset": cli.get("dataset")}
    for key, value in saved.items():
        given = getattr(args, key, None)
        if given is not None and given != value:
            option = "--" + key.replace("_", "-")
            raise UsageError(f"{option} {given} contradicts the checkpoint {args.resume}, made with {value}; "
                             "a resumed run keeps its settings")
        setattr(args, key, value)
    if args.stop_at_target and not config.get("stop_at_target"):
        raise UsageError(f"--stop-at-target contradicts the checkpoint {args.resume}, made without it")
    args.stop_at_target = bool(config.get("stop_at_target"))
    if args.backend is None:
        args.backend = cli.get("backend") or DEFAULT_BACKEND
    if args.out is None:
        args.out = cli.get("out", DEFAULTS["out"])
    if args.checkpoint is None:
        args.checkpoint = str(args.resume)
    state = {k: v for k, v in meta.items() if k not in ("format", "format_version", "layer_sizes", "dtype", "cli")}
    print(f"resuming {args.resume}: epoch {state.get('epoch')}, step {state.get('step')} of "
          f"{state.get('steps_per_epoch')}", flush=True)
    return Checkpoint(params, velocity, losses, state)


def save_interrupted(args, checkpoint):
    """Write ``checkpoint`` atomically and say on stderr, in one line, how to continue."""
    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path(args.out)
    cli = dict(recipe=args.recipe, dataset=args.dataset, out=args.out, backend=args.backend)
    save_checkpoint(path, checkpoint.params, checkpoint.velocity, checkpoint.epoch_losses,
                    **checkpoint.state, cli=cli)
    state = checkpoint.state
    again = f"digitbench train --resume {path}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
    print(f"digitbench train: interrupted in epoch {state['epoch']} at step {state['step']} of "
          f"{state['steps_per_epoch']}; saved the checkpoint {path}; continue with: {again}",
          file=sys.stderr, flush=True)
    return path
