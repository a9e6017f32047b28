"""A sweep of learning rates: where training stops converging, and where the loss is NaN.

Every run is the seed recipe (batch 64, inverse-time decay 0.05, momentum 0.9 unless
``--momentum`` says otherwise) from the same He-initialised weights and the same
shuffling, with only the initial learning rate changed, twice: on ``--backend`` (whose
softmax is stable), and on the experiments' NumPy network with the *naive* softmax
``exp(z) / sum(exp(z))`` (:mod:`digitbench.experiments.network`). A run whose loss
becomes NaN or infinite is stopped by :func:`digitbench.train.train`, which raises
:class:`~digitbench.errors.TrainingDiverged`; the sweep catches it and records the
epoch and step.

What it shows: with the stable softmax, a learning rate that is too high rarely makes
the loss NaN; it kills the ReLU units (every z <= 0, so no gradient flows) and the
network is stuck predicting one class at loss ~ln 10 = 2.30, with finite numbers. Only
when the weights themselves overflow does the loss become NaN. With the naive softmax
the loss goes NaN as soon as one logit passes 88.7 (float32), which a too-high learning
rate reaches within an epoch or two.

Why it blows up: SGD on a locally quadratic loss with curvature h converges only while
lr * h < 2 (with momentum m, while lr * h < 2 (1 + m)); past that every step overshoots
by more than the last, the weights grow geometrically, the logits with them, and within
a few steps the loss is inf and then NaN.
"""


from ..params import init_params
from ..recipe import RECIPES
from .common import Results, format_table, percent, run_training
from .network import ActivationNet

LEARNING_RATES = (0.001, 0.01, 0.1, 0.3, 1.0, 10.0, 100.0, 1000.0)
#: Below this final test accuracy a finite run is called "not learning" (chance is 10%).
LEARNING_THRESHOLD = 0.5


def status(run):
    d = run["diverged"]
    if d is not None:
        where = f"step {d['step']} of {d['steps_per_epoch']}" if d["step"] else "?"
        return f"NaN in epoch {d['epoch']} ({where})"
    return "learning" if run["test_accuracy"] >= LEARNING_THRESHOLD else "not learning"


def compute(args, data, backend):
    """Run the experiment; its numbers, table and figure data as a Results (nothing drawn)."""
    seed = RECIPES["seed"]
    recipe = dict(batch_size=seed["batch_size"], momentum=seed["momentum"], schedule=seed["schedule"],
                  decay=seed["decay"], epochs=args.epochs, seed=args.seed)
    if args.momentum is not None:
        recipe["momentum"] = args.momentum
    runs, naive_runs = {}, {}
    for lr in LEARNING_RATES:
        runs[lr] = run_training(backend, data, lr=lr, params=init_params(args.seed), **recipe)
        naive_runs[lr] = run_training(ActivationNet("relu", softmax="naive"), data, lr=lr,
                                      params=init_params(args.seed), **recipe)

    rows = []
    for lr, r in runs.items():
        h, n = r["history"], naive_runs[lr]
        rows.append([f"{lr:g}", f"{h[0]['loss']:.4g}" if h else "-", f"{h[-1]['loss']:.4g}" if h else "-",
                     percent(r["test_accuracy"]), status(r), percent(n["test_accuracy"]), status(n)])
    table = format_table(["lr", "loss epoch 1", "loss last", "test acc", "outcome (stable softmax)",
                          "naive: test acc", "outcome (naive softmax)"], rows)
    lines = [f"recipe: SGD batch {recipe['batch_size']}, momentum {recipe['momentum']}, lr / (1 + {recipe['decay']} "
             f"* epoch), {recipe['epochs']} epochs on {len(data.train_labels)} training images, seed {recipe['seed']}",
             f"stable softmax on {backend.name} (--backend); naive softmax exp(z)/sum(exp(z)) on the experiment's "
             f"NumPy network; 'not learning' = test accuracy below {100 * LEARNING_THRESHOLD:.0f}%",
             table]
    for label, group in (("stable", runs), ("naive", naive_runs)):
        for lr, r in group.items():
            if r["diverged"]:
                lines.append(f"{label}, lr {lr:g}: {r['diverged']['message']}")

    record = {"recipe": recipe, "runs": [
        {"lr": lr, "softmax": label, "test_accuracy": r["test_accuracy"], "outcome": status(r),
         "loss_per_epoch": [h["loss"] for h in r["history"]], "diverged": r["diverged"]}
        for label, group in (("stable", runs), ("naive", naive_runs)) for lr, r in group.items()]}
    return Results(lines, record, dict(runs=runs, naive_runs=naive_runs, recipe=recipe, backend=backend.name))
