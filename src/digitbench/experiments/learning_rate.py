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

import numpy as np

from ..params import init_params
from ..plots import new_figure
from ..train import RECIPES
from .network import ActivationNet
from .common import format_table, percent, run_training, smooth

LEARNING_RATES = (0.001, 0.01, 0.1, 0.3, 1.0, 10.0, 100.0, 1000.0)
#: Below this final test accuracy a finite run is called "not learning" (chance is 10%).
LEARNING_THRESHOLD = 0.5


def status(run):
    d = run["diverged"]
    if d is not None:
        where = f"step {d['step']} of {d['steps_per_epoch']}" if d["step"] else "?"
        return f"NaN in epoch {d['epoch']} ({where})"
    return "learning" if run["test_accuracy"] >= LEARNING_THRESHOLD else "not learning"


def run(args, data, backend):
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

    fig, ax = new_figure(1, 2, width=11, height=3.8)
    colors = dict(zip(LEARNING_RATES, ("tab:gray", "tab:blue", "tab:green", "tab:olive", "tab:orange", "tab:red",
                                       "tab:purple", "tab:brown")))
    for lr, r in runs.items():
        losses = np.asarray(r["losses"])
        finite = np.where(np.isfinite(losses), losses, np.nan)
        ax[0, 0].plot(smooth(finite, 20), color=colors[lr], lw=1, label=f"lr {lr:g}")
        if r["diverged"]:
            last = int(np.argmax(~np.isfinite(losses))) if (~np.isfinite(losses)).any() else len(losses) - 1
            top = np.nanmax(finite[:last]) if last > 0 else 1.0
            ax[0, 0].plot([last], [min(top, 1e3)], "x", color=colors[lr], ms=9, mew=2)
    ax[0, 0].set(title="training loss, stable softmax (mean of 20 steps, clipped); x: NaN", xlabel="step",
                 ylabel="cross-entropy", yscale="log",
                 ylim=(0.05, 2e3))
    for group, color, label, y in ((runs, "k", "stable softmax", 4), (naive_runs, "tab:red", "naive softmax", 16)):
        accs = [100 * r["test_accuracy"] if r["test_accuracy"] is not None else np.nan for r in group.values()]
        ax[0, 1].semilogx(LEARNING_RATES, accs, "o-", color=color, label=label, alpha=0.7)
        for lr, r in group.items():
            if r["diverged"]:
                ax[0, 1].plot([lr], [y], "x", color=color, ms=9, mew=2)
    ax[0, 1].set(title="final test accuracy (x: the loss became NaN)", xlabel="initial learning rate", ylabel="%", ylim=(0, 100))
    ax[0, 1].legend(fontsize=7)
    for a in ax[0]:
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=7)
    fig.suptitle(f"learning-rate sweep, momentum {recipe['momentum']}, {recipe['epochs']} epochs, {backend.name}",
                 fontsize=10)
    record = {"recipe": recipe, "runs": [
        {"lr": lr, "softmax": label, "test_accuracy": r["test_accuracy"], "outcome": status(r),
         "loss_per_epoch": [h["loss"] for h in r["history"]], "diverged": r["diverged"]}
        for label, group in (("stable", runs), ("naive", naive_runs)) for lr, r in group.items()]}
    return lines, fig, record
