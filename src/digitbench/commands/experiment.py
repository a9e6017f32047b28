"""``digitbench experiment NAME``: rerun one of the seed write-up's failures (see
:mod:`digitbench.experiments`)."""

import time
from pathlib import Path

from ..backends import get_backend
from ..errors import UsageError
from ..experiments import EXPERIMENTS
from ..experiments.common import load_subset
from ..plots import save_figure
from ..files import check_destination
from .options import (TEST_IMAGES, TRAIN_IMAGES, add_backend_option, add_data_dir_option, add_json_option, at_most,
                      check_epochs, positive_int, print_json, seed_value)


def add_parser(sub):
    p = sub.add_parser("experiment", help="rerun one of the seed write-up's failures and plot it")
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help="; ".join(f"{k}: {v[3]}" for k, v in EXPERIMENTS.items()))
    add_backend_option(p)
    add_data_dir_option(p)
    p.add_argument("--out-dir", default=".", help="where to write experiment-NAME.png (default: .)")
    p.add_argument("--subset", type=at_most(TRAIN_IMAGES, "the training images there are"), help="train on the first N training images (default: per experiment)")
    p.add_argument("--test-subset", type=at_most(TEST_IMAGES, "the test images there are"),
                   help="measure test accuracy on the first N test images (default: all 10,000)")
    p.add_argument("--epochs", type=positive_int, help="epochs per training run (default: per experiment)")
    p.add_argument("--seed", type=seed_value, default=0, help="initial weights and shuffling (default: 0)")
    p.add_argument("--momentum", type=float,
                   help="override the recipe's momentum (sigmoid: 0, plain SGD; the others: 0.9, the seed recipe)")
    p.add_argument("--norm-every", type=positive_int, default=20,
                   help="sigmoid: record gradient norms every N steps (default: 20)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args):
    module, subset, epochs, _ = EXPERIMENTS[args.name]
    if args.momentum is not None and not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), not {args.momentum}")
    out_dir = Path(args.out_dir)
    check_destination(out_dir / f"experiment-{args.name}.png", "--out-dir")
    args.subset = args.subset or subset
    args.epochs = args.epochs or epochs
    check_epochs(args.epochs, 1, model_file=False)  # batch size 1: the most steps there can be
    backend = get_backend(args.backend)
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
