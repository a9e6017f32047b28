"""How many epochs a momentum-SGD recipe needs to reach 97% test accuracy (the search behind ``fast``).

Usage (from the repository root; the data as ``digitbench`` finds it)::

    python tools/recipe_search.py --lr 0.1 --schedule linear-floor --decay 1.0 --seeds 0-4
    python tools/recipe_search.py --lr 0.1 --schedule linear --epochs 2 --seeds 5-9

Each seed is one :func:`digitbench.time_to_target.run_to_target` run on a backend (numba
by default), exactly as ``digitbench bench`` runs the closed recipe: the same initial
weights, batches and checks (20 an epoch, off the clock), stopping at the first check at
or above 97%. It prints, per seed, the epochs trained at that check (or the accuracy
reached instead), then the mean of the middle three of five as ``bench`` summarizes
times (MLPerf's rule: fastest and slowest dropped). Epochs, not seconds: they do not
depend on the machine, so a recipe can be chosen while the machine is busy.
"""

import argparse
import statistics

from digitbench import time_to_target
from digitbench.bench import MOMENTUM, BackendContender
from digitbench.datasets import load_mnist
from digitbench.backends import get_backend
from digitbench.recipe import SCHEDULES


def seed_range(text):
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--schedule", choices=SCHEDULES, default="linear-floor")
    p.add_argument("--decay", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                   help="centred inputs, x minus the mean image (default: on, as fast)")
    p.add_argument("--epochs", type=int, default=2, help="the recipe's epochs: the most a run trains")
    p.add_argument("--seeds", type=seed_range, default=seed_range("0-4"), help="e.g. 0-4")
    p.add_argument("--backend", default="numba")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    recipe = dict(name="search", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=MOMENTUM,
                  schedule=args.schedule, decay=args.decay, center=args.center)
    data = load_mnist(args.data_dir)
    contender = BackendContender(get_backend(args.backend))
    contender.prepare(data, args.batch_size)
    epochs = []
    print(f"recipe: {recipe}")
    for seed in args.seeds:
        run = time_to_target.run_to_target(contender, data, recipe, seed)
        reached = run["seconds"] is not None
        epochs.append(run["epochs"] if reached else float("inf"))
        print(f"seed {seed}: " + (f"97% after {run['epochs']:.2f} epochs" if reached
                                  else f"not reached in {args.epochs} epochs ({100 * run['accuracy']:.2f}%)"),
              flush=True)
    kept = sorted(epochs)[1:-1] if len(epochs) >= 3 else epochs
    mean = statistics.fmean(kept)
    print(f"mean of the middle {len(kept)}: " + (f"{mean:.3f} epochs" if mean != float("inf") else "not reached"))


if __name__ == "__main__":
    main()
