"""Sigmoid hidden units against ReLU: the seed's stall, and the vanishing gradients behind it.

The backends implement only the fixed ReLU network, so this experiment trains the
experiments' own NumPy network (:class:`~digitbench.experiments.network.ActivationNet`:
the NumPy backend's forward and backward pass with ``relu`` and its derivative swapped
for a pair looked up by name). So the sigmoid arm runs on NumPy whatever ``--backend``
says, and so does its ReLU twin, for a like-for-like comparison. Both arms, ReLU and
sigmoid, run on it through the very same :func:`digitbench.train.train` loop (same
seed, so the same He-initialised weights and the same shuffling; same recipe), and it
records the per-layer gradient norms ``||dW1||, ||dW2||, ||dW3||`` (Frobenius) every
few steps. A third run trains the ReLU network on ``--backend`` as the reference: its
accuracy should match the NumPy ReLU arm up to float32 rounding.

Why sigmoid learns slowly here. Backpropagating through a hidden layer multiplies the
error signal by the activation's derivative::

    dz_l = (dz_{l+1} @ W_{l+1}.T) * f'(z_l)
    relu'(z)    = 1 where z > 0, else 0         (the active units pass the signal unchanged)
    sigmoid'(z) = s (1 - s) <= 1/4, s = sigmoid(z)  (every unit shrinks it at least 4x)

so ``dz1`` is shrunk twice on its way from the loss, and ``dW1 = X.T @ dz1`` with it:
the first layer, which has most of the weights, learns slowest. With plain SGD at
learning rate 0.01 that is the stall; momentum (the default seed recipe) makes the
steps about ten times larger and hides much of it.
"""

import numpy as np

from ..params import init_params
from .common import Results, format_table, percent, run_training
from .network import ActivationNet


#: Plain SGD (the seed recipe without momentum): where the sigmoid network stalls.
RECIPE = dict(batch_size=64, lr=0.01, momentum=0.0, schedule="inverse-time", decay=0.05)


def compute(args, data, backend):
    """Run the experiment; its numbers, table and figure data as a Results (nothing drawn)."""
    recipe = dict(RECIPE, epochs=args.epochs, seed=args.seed)
    if args.momentum is not None:
        recipe["momentum"] = args.momentum
    arms = {}
    for activation in ("relu", "sigmoid"):
        net = ActivationNet(activation, every=args.norm_every)
        run_ = run_training(net, data, params=init_params(args.seed), **recipe)
        run_["norms"] = np.array(net.norms)
        run_["runs_on"] = "numpy (experiment's network)"
        arms[activation] = run_
    reference = run_training(backend, data, params=init_params(args.seed), **recipe)
    reference["runs_on"] = f"{backend.name} (--backend)"

    rows = []
    for label, r in (("relu", arms["relu"]), ("sigmoid", arms["sigmoid"]), ("relu, reference", reference)):
        norms = r.get("norms")
        median = np.median(norms[:, 1:4], axis=0) if norms is not None else None
        rows.append([label, r["runs_on"], percent(r["test_accuracy"]), f"{r['history'][-1]['loss']:.4f}"]
                    + ([f"{m:.3g}" for m in median] + [f"{median[0] / median[2]:.2f}", f"{np.mean(norms[:, 4]):.3f}",
                                                        f"{np.mean(norms[:, 5]):.3f}"]
                       if norms is not None else ["-"] * 6))
    table = format_table(["hidden units", "runs on", "test acc", "last loss", "||dW1||", "||dW2||", "||dW3||",
                          "dW1/dW3", "mean f'(z1)", "mean f'(z2)"], rows)
    per_epoch = format_table(
        ["epoch", "relu test acc", "sigmoid test acc"],
        [[h["epoch"], percent(h["test_accuracy"]), percent(s["test_accuracy"])]
         for h, s in zip(arms["relu"]["history"], arms["sigmoid"]["history"])])
    ratio = np.median(arms["relu"]["norms"][:, 1] / arms["sigmoid"]["norms"][:, 1])
    lines = [f"recipe: SGD batch {recipe['batch_size']}, lr {recipe['lr']} / (1 + {recipe['decay']} * epoch), "
             f"momentum {recipe['momentum']}, {recipe['epochs']} epochs on {len(data.train_labels)} training images, "
             f"seed {recipe['seed']}; gradient norms every {args.norm_every} steps",
             "the sigmoid and relu arms run on the experiment's NumPy network; the reference on --backend",
             table, "", per_epoch, "",
             "||dWk||: median over training of the Frobenius norm of the gradient of Wk; mean f'(z): mean slope of "
             "the hidden activation (relu: fraction of active units; sigmoid: s(1 - s) <= 0.25)",
             f"||dW1|| is {ratio:.1f}x smaller with sigmoid than with relu (median over training)"]

    record = {
        "recipe": recipe, "train_images": len(data.train_labels),
        "arms": {name: {"runs_on": r["runs_on"], "test_accuracy": r["test_accuracy"],
                        "test_accuracy_per_epoch": [h["test_accuracy"] for h in r["history"]],
                        "norms": r["norms"].tolist() if "norms" in r else None}
                 for name, r in (*arms.items(), ("relu_reference", reference))},
        "dW1_ratio_relu_over_sigmoid": float(ratio),
    }
    return Results(lines, record, dict(arms=arms, reference=reference, recipe=recipe, backend=backend.name))
