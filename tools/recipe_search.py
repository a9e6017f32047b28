"""Choose the fixed-length recipe behind ``fast`` on held-out training images, never the test set.

Usage (from the repository root; the data as ``digitbench`` finds it)::

    python tools/recipe_search.py                                 # the default grid, 20 seeds
    python tools/recipe_search.py --epochs 1,2 --decays 1.0,1.5 --seeds 0-19
    python tools/recipe_search.py --confirm                       # then, once, on the test set
    python tools/recipe_search.py --network cnn --schedule linear --lr 0.05 --no-center \
        --decays 0 --epochs 1,2,3 --target 0.99 --seeds 0-4          # the CNN's cnn-fast

The last 10,000 of the 60,000 training images are held out as a validation set
(:func:`digitbench.time_to_target.validation_data`); each candidate recipe trains on the
first 50,000 from ``init_params(seed)`` for every seed, exactly as ``digitbench bench``
runs the closed recipe (:func:`digitbench.time_to_target.run_fixed`: the whole recipe,
evaluated once at the end). The choice is the candidate with the fewest steps whose mean
validation accuracy's 95% interval lies at or above the target plus ``--margin``; among
equally long ones, the most accurate. The test images are not read during the search.
``--confirm`` then trains the chosen recipe on all 60,000 images and evaluates it on the
test set once per seed: a report of what was chosen, never an input to the choice.
Accuracies, not seconds, are compared: a recipe can be chosen while the machine is busy.
"""

import argparse
import itertools

from digitbench import time_to_target
from digitbench.backends import get_backend
from digitbench.bench import BackendContender
from digitbench.datasets import load_mnist
from digitbench.recipe import SCHEDULES, Recipe


def seed_range(text):
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def numbers(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def candidates(epochs, decays, lr=0.1, schedule="linear-floor", batch_size=64, center=True, network="mlp"):
    """The grid of recipes (dicts as :func:`digitbench.time_to_target.closed_recipe` gives)."""
    return [dict(name=f"{e} epoch{'s' if e > 1 else ''}, decay {d:g}", epochs=e, batch_size=batch_size, lr=lr,
                 momentum=Recipe.momentum, schedule=schedule, decay=d, center=center, network=network)
            for e, d in itertools.product(epochs, decays)]


def search(contender, data, recipes, seeds, target=time_to_target.TARGET, margin=0.0,
           holdout=time_to_target.VALIDATION_IMAGES, report=print):
    """Each recipe's fixed-length figure on the validation split, and the chosen recipe.

    Only ``data.train_images`` and ``data.train_labels`` are read.

    Returns
    -------
    (chosen, summaries) : the chosen recipe dict (None when no candidate qualifies), and
    one summary (:func:`~digitbench.time_to_target.summarize_fixed`) per recipe
    """
    validation = time_to_target.validation_data(data, holdout)
    contender.prepare(validation, recipes[0]["batch_size"])  # its evaluation set: the validation images
    summaries = []
    for recipe in recipes:
        s = time_to_target.fixed_seeds(contender, validation, recipe, seeds, target)
        summaries.append(s)
        low, high = s["accuracy_ci"]
        report(f"{recipe['name']}: validation accuracy {100 * s['accuracy']:.2f}% "
               f"(95% interval {100 * low:.2f}-{100 * high:.2f}%), {100 * s['at_target']:.0f}% of "
               f"{s['seeds']} seeds at or above {100 * target:g}%")
    steps = [r["epochs"] * -(-(len(data.train_images) - holdout) // r["batch_size"]) for r in recipes]
    good = [(n, -s["accuracy"], i) for i, (n, s) in enumerate(zip(steps, summaries))
            if s["accuracy_ci"][0] >= target + margin]
    return (recipes[min(good)[2]] if good else None), summaries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=numbers(int), default=[1, 2], help="candidate lengths, e.g. 1,2")
    p.add_argument("--decays", type=numbers(float), default=[1.0, 1.5, 2.0],
                   help="candidate decays of the linear-floor schedule (a fraction of the rate a epoch)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--schedule", choices=SCHEDULES, default="linear-floor")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                   help="centred inputs, x minus the mean image (default: on)")
    p.add_argument("--seeds", type=seed_range, default=seed_range("0-19"), help="e.g. 0-19")
    p.add_argument("--network", choices=["mlp", "cnn"], default="mlp",
                   help="the network (cnn: choose the recipe behind cnn-fast, e.g. --schedule linear --lr 0.05 "
                        "--no-center --decays 0 --target 0.99)")
    p.add_argument("--target", type=float, default=time_to_target.TARGET)
    p.add_argument("--margin", type=float, default=0.001, help="the interval's lower end must clear target + margin")
    p.add_argument("--confirm", action="store_true",
                   help="after choosing: train the choice on all training images, evaluate it on the test set")
    p.add_argument("--backend", default="numba")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    data = load_mnist(args.data_dir)
    contender = BackendContender(get_backend(args.backend, args.network))
    print(f"choosing on a validation split: the last {time_to_target.VALIDATION_IMAGES:,} training images; "
          f"training on the first {len(data.train_images) - time_to_target.VALIDATION_IMAGES:,}; "
          f"the test set is not used; seeds {args.seeds[0]}-{args.seeds[-1]}", flush=True)
    grid = candidates(args.epochs, args.decays, args.lr, args.schedule, args.batch_size, args.center, args.network)
    chosen, _ = search(contender, data, grid, args.seeds, args.target, args.margin,
                       report=lambda line: print(line, flush=True))
    if chosen is None:
        print(f"no candidate's interval clears {100 * (args.target + args.margin):g}%")
        return 1
    print(f"chosen: {chosen}")
    if args.confirm:
        contender.prepare(data, chosen["batch_size"])  # now, and only now, the test set
        s = time_to_target.fixed_seeds(contender, data, chosen, args.seeds, args.target)
        low, high = s["accuracy_ci"]
        print(f"confirmation on the test set (all {len(data.train_images):,} training images, after the choice): "
              f"mean test accuracy {100 * s['accuracy']:.2f}% (95% interval {100 * low:.2f}-{100 * high:.2f}%), "
              f"{100 * s['at_target']:.0f}% of {s['seeds']} seeds at or above {100 * args.target:g}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
