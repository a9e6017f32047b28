"""``digitbench experiment NAME``: the seed write-up's failures, as experiments to rerun.

Each experiment prints a short table and writes ``experiment-NAME.png`` into
``--out-dir``. They train on the first ``--subset`` training images for ``--epochs``
epochs (small defaults, so that each takes well under a minute) and report test
accuracy on all 10,000 test images.

=================  ====================================================================
sigmoid            sigmoid vs ReLU hidden units, plain SGD; per-layer gradient norms
softmax-overflow   softmax without max-subtraction: inf and NaN, float32 and float64
learning-rate      a sweep of learning rates: where it stops converging, where it NaNs
initialization     zero, constant, too-small, too-large and He initial weights
=================  ====================================================================
"""

import importlib
import time
from pathlib import Path

#: name -> (module, default --subset, default --epochs, one-line description)
EXPERIMENTS = {
    "sigmoid": ("sigmoid", 60000, 5, "sigmoid vs ReLU hidden units: slower learning and vanishing gradients"),
    "softmax-overflow": ("softmax_overflow", None, None, "softmax without max-subtraction overflows to inf and NaN"),
    "learning-rate": ("learning_rate", 10000, 3, "a learning-rate sweep: where training stops converging or NaNs"),
    "initialization": ("initialization", 10000, 3, "zero, constant, too-small, too-large and He initialisation"),
}


def add_parser(sub):
    from ..cli import add_backend_option, positive_int

    p = sub.add_parser("experiment", help="rerun one of the seed write-up's failures and plot it")
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help="; ".join(f"{k}: {v[3]}" for k, v in EXPERIMENTS.items()))
    add_backend_option(p)
    p.add_argument("--data-dir", help="folder with the four IDX files (default: $DIGITBENCH_DATA, else the cache)")
    p.add_argument("--out-dir", default=".", help="where to write experiment-NAME.png (default: .)")
    p.add_argument("--subset", type=positive_int, help="train on the first N training images (default: per experiment)")
    p.add_argument("--test-subset", type=positive_int,
                   help="measure test accuracy on the first N test images (default: all 10,000)")
    p.add_argument("--epochs", type=positive_int, help="epochs per training run (default: per experiment)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and shuffling (default: 0)")
    p.add_argument("--momentum", type=float,
                   help="override the recipe's momentum (sigmoid: 0, plain SGD; the others: 0.9, the seed recipe)")
    p.add_argument("--norm-every", type=positive_int, default=20,
                   help="sigmoid: record gradient norms every N steps (default: 20)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args):
    from ..backends import get_backend
    from ..cli import print_json
    from ..errors import UsageError
    from .common import load_subset, save_figure

    module_name, subset, epochs, _ = EXPERIMENTS[args.name]
    if args.momentum is not None and not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), not {args.momentum}")
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir}: no such folder")
    args.subset = args.subset or subset
    args.epochs = args.epochs or epochs
    backend = get_backend(args.backend)
    module = importlib.import_module(f"{__name__}.{module_name}")
    t0 = time.perf_counter()
    data = load_subset(args.data_dir, args.subset, args.test_subset)
    lines, fig, record = module.run(args, data, backend)
    seconds = time.perf_counter() - t0
    path = save_figure(fig, out_dir / f"experiment-{args.name}.png")
    print("\n".join(lines))
    print(f"wrote {path} ({seconds:.1f} s, backend {backend.name}, test accuracy on {len(data.test_labels)} test images)")
    if args.json:
        print_json({"experiment": args.name, "backend": backend.name, "figure": str(path),
                    "seconds": round(seconds, 2), "subset": args.subset, "epochs": args.epochs, **record})
    return 0
