"""``digitbench experiment NAME``: rerun a classic training failure and plot it (see
:mod:`digitbench.experiments`)."""

import time
from pathlib import Path

from ..experiments import EXPERIMENTS
from ..experiments.common import load_subset
from ..cnn_plots import plot_experiment_cnn_filters, plot_experiment_shifted_digits
from ..plots import (plot_experiment_conv_no_flip, plot_experiment_initialization, plot_experiment_learning_rate,
                     plot_experiment_sigmoid, plot_experiment_softmax_overflow, save_figure)
from ..recipe import Recipe
from .options import (TEST_IMAGES, TRAIN_IMAGES, add_backend_option, add_data_options, add_json_option, at_most,
                      check_out_dir, make_out_dir, positive_int, print_json, seed_value)
from .runtime import add_threads_option, load_backend, threaded

#: name -> the function that draws its figure from its Results
FIGURES = {"sigmoid": plot_experiment_sigmoid, "softmax-overflow": plot_experiment_softmax_overflow,
           "learning-rate": plot_experiment_learning_rate, "initialization": plot_experiment_initialization,
           "conv-no-flip": plot_experiment_conv_no_flip, "cnn-filters": plot_experiment_cnn_filters,
           "shifted-digits": plot_experiment_shifted_digits}


def add_parser(sub):
    p = sub.add_parser("experiment",
                       help="rerun a classic training failure (sigmoid units, softmax overflow, ...) and plot it")
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help="; ".join(f"{k}: {v[3]}" for k, v in EXPERIMENTS.items()))
    add_backend_option(p)
    add_data_options(p)
    p.add_argument("--out-dir", type=Path, default=".",
                   help="where to write experiment-NAME.png, created if missing (default: .)")
    p.add_argument("--subset", type=at_most(TRAIN_IMAGES, "the training images there are"),
                   help="train on the first N training images (default: per experiment)")
    p.add_argument("--test-subset", type=at_most(TEST_IMAGES, "the test images there are"),
                   help="measure test accuracy on the first N test images (default: all 10,000)")
    p.add_argument("--epochs", type=positive_int, help="epochs per training run (default: per experiment)")
    p.add_argument("--seed", type=seed_value, default=0, help="initial weights and shuffling (default: 0)")
    p.add_argument("--momentum", type=float,
                   help="override the recipe's momentum (sigmoid: 0, plain SGD; the others: 0.9, "
                        "as the default recipe)")
    p.add_argument("--norm-every", type=positive_int, default=20,
                   help="sigmoid: record gradient norms every N steps (default: 20)")
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(func=threaded(run))


def run(args):
    module, subset, epochs, _ = EXPERIMENTS[args.name]
    draw = FIGURES[args.name]
    # the one check of training settings, before the data are loaded
    Recipe(**{k: v for k, v in (("momentum", args.momentum), ("epochs", args.epochs)) if v is not None})
    check_out_dir(args.out_dir, [f"experiment-{args.name}.png"])
    args.subset = args.subset or subset
    args.epochs = args.epochs or epochs
    backend = load_backend(args.backend)
    t0 = time.perf_counter()
    data = load_subset(args.data_dir, args.subset, args.test_subset, args.dataset)
    results = module.compute(args, data, backend)
    seconds = time.perf_counter() - t0
    path = save_figure(draw(results), make_out_dir(args.out_dir) / f"experiment-{args.name}.png")
    print("\n".join(results.lines))
    trained = f", test accuracy on {len(data.test_labels)} test images" if epochs is not None else ""
    print(f"wrote {path} ({seconds:.1f} s, backend {backend.name}{trained})")
    if args.json:
        print_json({"experiment": args.name, "backend": backend.name, "figure": str(path),
                    "seconds": round(seconds, 2), "subset": args.subset, "epochs": args.epochs, **results.record})
    return 0
