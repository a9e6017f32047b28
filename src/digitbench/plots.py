"""Every figure of digitbench, as PNG files (matplotlib, Agg backend: no display needed).

A trained model's pictures (below), ``digitbench bench``'s bar chart
(:func:`plot_bench`) and each experiment's figure (``plot_experiment_*``, drawn from the
Results its ``compute`` returned; the CNN experiments' are in :mod:`digitbench.cnn_plots`).

``digitbench plot --model PATH --out-dir DIR`` writes five of them:

=========================  ================================================================
training-curves.png        loss, train and test accuracy per epoch (the ``history`` that
                           ``digitbench train`` saves in the model file's metadata)
confusion-matrix.png       10 x 10 test-set counts, row = true digit, column = predicted
misclassified.png          the test digits the model gets wrong with the most confidence
first-layer-weights.png    the 128 columns of W1 (784,) drawn as 28 x 28 images, titled,
                           with a colour bar and a caption (:mod:`digitbench.weight_plots`)
first-layer-learned.png    the same for W1 minus its He initialisation: what training added
=========================  ================================================================

For a CNN the last two draw the first convolution's 16 filters (5 x 5 each) instead.

``digitbench train`` starts from ``init_params(seed)``, and the model file records the
seed, so the initial weights can be rebuilt exactly. In the raw weights the random
initial noise still dominates: the border pixels of MNIST are always 0, so the weights
they feed never receive a gradient and keep their random starting values.

``digitbench train --plot PATH`` writes the first one at the end of training.
"""

from pathlib import Path

import numpy as np

from .errors import UsageError
from .evaluate import confusion_matrix, model_probabilities, predicted_labels
from .bench_report import format_ratio
from .figures import DPI, new_figure, save_figure  # noqa: F401  (DPI re-exported)
from .drawing import figure_text, import_matplotlib
from .networks import init_params, network_of
from .weight_plots import (FILTERS_CAPTION, FILTERS_LEARNED_CAPTION, LEARNED_CAPTION, WEIGHTS_CAPTION,  # noqa: F401
                           plot_weights, weight_mosaic)

FILES = {
    "curves": "training-curves.png",
    "confusion": "confusion-matrix.png",
    "misclassified": "misclassified.png",
    "weights": "first-layer-weights.png",
    "learned": "first-layer-learned.png",
}


def plot_history(history, path, title=None):
    """Loss and accuracy per epoch; the best epoch marked on the validation curve when
    there is one (the test curve is then only reported), else on the test curve.

    Parameters
    ----------
    history : list of dict, one per epoch, with ``epoch``, ``loss``, ``train_accuracy``
        and ``test_accuracy``, and ``validation_accuracy`` when a validation set was held
        out (as :func:`digitbench.train.train` records them)
    path : where to write the PNG
    """
    if not history:
        raise UsageError("no training history to plot (the model file has none)")
    epochs = [h["epoch"] for h in history]
    fig, ax = new_figure(1, 2, 10, 3.6)
    ax[0, 0].plot(epochs, [h["loss"] for h in history], "o-", ms=3)
    ax[0, 0].set(title="training loss (mean over the epoch)", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    chooser = "validation" if all("validation_accuracy" in h for h in history) else "test"
    for name in ("train", "validation", "test"):
        if name != "validation" or chooser == "validation":
            ax[0, 1].plot(epochs, [100 * h[f"{name}_accuracy"] for h in history], "o-", ms=3, label=name)
    best = max(history, key=lambda h: h[f"{chooser}_accuracy"])
    ax[0, 1].axvline(best["epoch"], color="grey", lw=0.8, ls=":")
    ax[0, 1].set(title=f"accuracy ({chooser}: {100 * history[-1][f'{chooser}_accuracy']:.2f}% last, "
                       f"{100 * best[f'{chooser}_accuracy']:.2f}% best at epoch {best['epoch']})",
                 xlabel="epoch", ylabel="%")
    ax[0, 1].legend()
    for a in ax[0]:
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(figure_text(title), fontsize=10)
    return save_figure(fig, path)


def plot_confusion(matrix, path):
    """The confusion matrix (10, 10) of counts, colour on a log scale, counts written in."""
    LogNorm = import_matplotlib().colors.LogNorm

    matrix = np.asarray(matrix)
    fig, ax = new_figure(1, 1, 5.2, 4.6)
    a = ax[0, 0]
    image = a.imshow(matrix + 1, cmap="Blues", norm=LogNorm(vmin=1, vmax=matrix.max() + 1))
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            a.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                   color="white" if matrix[i, j] > 0.3 * matrix.max() else "black")
    a.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
          title=f"test set: {matrix.trace()} of {matrix.sum()} right ({100 * matrix.trace() / matrix.sum():.2f}%)")
    fig.colorbar(image, ax=a, label="count + 1 (log)")
    return save_figure(fig, path)


def most_confident_mistakes(probabilities, labels, k):
    """Indices of the ``k`` wrong predictions with the highest predicted probability."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


def plot_misclassified(images, labels, probabilities, path, rows=3, cols=8):
    """A grid of the most confidently misclassified digits.

    Parameters
    ----------
    images : ndarray of shape (n, 784), uint8
    labels : ndarray of shape (n,), the true digits
    probabilities : ndarray of shape (n, 10), the model's output
    """
    picked = most_confident_mistakes(probabilities, np.asarray(labels), rows * cols)
    fig, ax = new_figure(rows, cols, cols * 1.2, rows * 1.45)
    for a in ax.flat:
        a.axis("off")
    for a, i in zip(ax.flat, picked):
        p = probabilities[i]
        a.imshow(images[i].reshape(28, 28), cmap="gray_r", interpolation="nearest")
        a.set_title(f"true {labels[i]} → {p.argmax()}\n{100 * p.max():.2f}%", fontsize=8)
    wrong = int(np.sum(probabilities.argmax(axis=1) != labels))
    fig.suptitle(f"the {len(picked)} most confident of {wrong} mistakes on the test set "
                 "(true → predicted, predicted probability)", fontsize=9)
    return save_figure(fig, path)


def write_model_plots(params, meta, data, backend, out_dir, source="the model"):
    """Write the pictures of a model into ``out_dir`` (see :data:`FILES`); returns {kind: path}.

    The curves need ``meta["history"]``, the learned weights ``meta["seed"]``; each is
    skipped when its metadata is missing.
    """
    out_dir = Path(out_dir)
    probabilities = model_probabilities(backend, params, data.test_images, source)  # refused unless finite
    labels = np.asarray(data.test_labels, dtype=np.int64)
    written = {}
    if meta.get("history"):
        written["curves"] = plot_history(meta["history"], out_dir / FILES["curves"],
                                         title=f"{meta.get('recipe', '')} recipe, {meta.get('backend', '')} backend")
    predictions = predicted_labels(backend, params, data.test_images, probabilities)
    written["confusion"] = plot_confusion(confusion_matrix(labels, predictions),
                                          out_dir / FILES["confusion"])
    written["misclassified"] = plot_misclassified(data.test_images, labels, probabilities,
                                                  out_dir / FILES["misclassified"])
    network = network_of(params)
    cnn = network.name == "cnn"
    written["weights"] = plot_weights(params.W1, out_dir / FILES["weights"],
                                      "first-layer filters (W1)" if cnn else "first-layer weights (columns of W1)",
                                      FILTERS_CAPTION if cnn else WEIGHTS_CAPTION)
    if isinstance(meta.get("seed"), int):
        initial = init_params(network, meta["seed"], params.W1.dtype).W1
        written["learned"] = plot_weights(params.W1 - initial, out_dir / FILES["learned"],
                                          "what training added to the first-layer weights (W1 minus its start)",
                                          FILTERS_LEARNED_CAPTION if cnn else LEARNED_CAPTION)
    return written


def smooth(values, window):
    """Running mean over ``window`` steps (NaN kept where the input has NaN)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    out = np.convolve(values, kernel, mode="valid")
    return np.concatenate([np.full(window - 1, np.nan), out])


def plot_bench(records, path, threads, batch_size, network="mlp"):
    """Two horizontal bar charts (training and inference samples/s, log scale), PNG; the
    title names the network when it is not the default MLP."""
    names = [r["name"] for r in records]
    colors = ["#4c72b0" if r["kind"] == "digitbench" else "#999999" for r in records]
    fig, axes = new_figure(1, 2, 11, 1.2 + 0.55 * len(records), constrained_layout=True)
    axes = axes[0]
    images = max(r.get("infer_samples_timed", 10_000) for r in records)  # the naive backend's fewer: starred
    for ax, key, title in ((axes[0], "train_samples_per_s", "training"), (axes[1], "infer_samples_per_s", "inference")):
        values = [r[key] for r in records]
        ax.barh(names, values, color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("samples per second (log scale)")
        ax.set_title(f"{title}, batch {batch_size}, at most {threads} thread{'s' if threads > 1 else ''} each"
                     if key.startswith("train") else f"{title} ({images:,} test images)")
        for y, (r, v) in enumerate(zip(records, values)):
            label = f"{v:,.0f}"
            if key.startswith("train") and "train_vs_pytorch" in r:
                label += f"  ({format_ratio(r['train_vs_pytorch'])}x PyTorch)"
            ax.text(v, y, " " + label, va="center", fontsize=8)
        # Bars start a whole decade below the smallest value, so that lengths compare in decades.
        ax.set_xlim(10 ** np.floor(np.log10(min(values))), max(values) * 10)
    peers = any(r["kind"] != "digitbench" for r in records)
    title = "digitbench's backends (blue) and peer libraries (grey)" if peers else "digitbench's backends"
    fig.suptitle(title + (f", training the {network.upper()}" if network != "mlp" else ""), fontsize=9)
    return save_figure(fig, path, dpi=110, tight=False)


def plot_sweep(points, path, axis, title):
    """Training and inference samples/s against ``axis`` ("batch_size" or "threads"), log-log.

    Parameters
    ----------
    points : list of dict, as :mod:`digitbench.sweeps` returns them (``name``, ``kind``,
        ``axis``, ``train_samples_per_s``, ``infer_samples_per_s``; or ``error``)
    """
    fig, axes = new_figure(1, 2, 11, 4.2, constrained_layout=True)
    names = list(dict.fromkeys(p["name"] for p in points))
    for ax, key, what in ((axes[0, 0], "train_samples_per_s", "training"),
                          (axes[0, 1], "infer_samples_per_s", "inference")):
        for i, name in enumerate(names):
            mine = sorted((p for p in points if p["name"] == name and "error" not in p), key=lambda p: p[axis])
            if not mine:
                continue
            style = "-" if mine[0]["kind"] == "digitbench" else "--"
            ax.plot([p[axis] for p in mine], [p[key] for p in mine], style, marker="o", label=name,
                    linewidth=2.2 if mine[0]["kind"] == "digitbench" else 1.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({p[axis] for p in points})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
        ax.set_xlabel(axis.replace("_", " ") + " (log scale)")
        ax.set_ylabel("samples per second (log scale)")
        ax.set_title(what)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title + "; digitbench solid, peers dashed", fontsize=9)
    return save_figure(fig, path, dpi=110, tight=False)


# --------------------------------------------------------------------------- experiments


def plot_experiment_sigmoid(results):
    """The figure of ``digitbench experiment sigmoid``, from its Results."""
    arms, reference, recipe, backend = (results.plot[k] for k in ("arms", "reference", "recipe", "backend"))
    fig, ax = new_figure(1, 3, width=13, height=3.8)
    colors = {"relu": "tab:blue", "sigmoid": "tab:red"}
    for name, r in arms.items():
        epochs = [h["epoch"] for h in r["history"]]
        ax[0, 0].plot(epochs, [100 * h["test_accuracy"] for h in r["history"]], "o-", color=colors[name], label=name)
        curve = smooth(r["losses"], 50)
        ax[0, 1].plot(np.arange(len(curve))[::10], curve[::10], color=colors[name], label=name, lw=1)
        for k, style in zip(range(3), ("-", "--", ":")):
            ax[0, 2].semilogy(r["norms"][:, 0], smooth(r["norms"][:, 1 + k], 15), style, color=colors[name],
                              lw=1, label=f"{name} ||dW{k + 1}||")
    ax[0, 0].plot([h["epoch"] for h in reference["history"]], [100 * h["test_accuracy"] for h in reference["history"]],
                  "x", color="k", label=f"relu on {backend}")
    ax[0, 0].set(title="test accuracy", xlabel="epoch", ylabel="%")
    ax[0, 0].xaxis.get_major_locator().set_params(integer=True)
    ax[0, 1].set(title="training loss (mean of 50 steps)", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax[0, 2].set(title="gradient norm per layer", xlabel="step")
    for a in ax[0]:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    fig.suptitle(f"sigmoid vs relu hidden units, plain SGD (momentum {recipe['momentum']})", fontsize=10)
    return fig


def plot_experiment_learning_rate(results):
    """The figure of ``digitbench experiment learning-rate``, from its Results."""
    runs, naive_runs, recipe, backend = (results.plot[k] for k in ("runs", "naive_runs", "recipe", "backend"))
    fig, ax = new_figure(1, 2, width=11, height=3.8)
    colors = dict(zip(runs, ("tab:gray", "tab:blue", "tab:green", "tab:olive", "tab:orange", "tab:red",
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
        ax[0, 1].semilogx(list(group), accs, "o-", color=color, label=label, alpha=0.7)
        for lr, r in group.items():
            if r["diverged"]:
                ax[0, 1].plot([lr], [y], "x", color=color, ms=9, mew=2)
    ax[0, 1].set(title="final test accuracy (x: the loss became NaN)", xlabel="initial learning rate", ylabel="%", ylim=(0, 100))
    ax[0, 1].legend(fontsize=7)
    for a in ax[0]:
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=7)
    fig.suptitle(f"learning-rate sweep, momentum {recipe['momentum']}, {recipe['epochs']} epochs, {backend}",
                 fontsize=10)
    return fig


def plot_experiment_softmax_overflow(results):
    """The figure of ``digitbench experiment softmax-overflow``, from its Results."""
    by_dtype = results.plot["by_dtype"]
    fig, ax = new_figure(1, 2, width=11, height=3.8)
    for dtype, color in (("float32", "tab:red"), ("float64", "tab:blue")):
        rows = np.array([r[:4] for r in by_dtype[dtype]])
        s, naive, stable = rows[:, 0], rows[:, 2], rows[:, 3]
        ax[0, 0].loglog(s, stable, "-", color=color, lw=3, alpha=0.35, label=f"stable, {dtype}")
        finite = np.isfinite(naive)
        ax[0, 0].loglog(s[finite], naive[finite], ".", color=color, ms=3, label=f"naive, {dtype}")
        for bad, ls, what in ((np.isinf(naive), "--", "inf"), (np.isnan(naive), ":", "NaN")):
            if bad.any():
                ax[0, 0].axvline(s[np.argmax(bad)], color=color, ls=ls, lw=1,
                                 label=f"naive {dtype} loss {what} from x{s[np.argmax(bad)]:.0f}")
        ax[0, 1].loglog(s, rows[:, 1], color=color, label=f"max logit ({dtype})" if dtype == "float32" else None)
        limit = np.log(np.finfo(dtype).max)
        ax[0, 1].axhline(limit, color=color, ls=":", label=f"exp overflows in {dtype} ({limit:.1f})")
    ax[0, 0].set(title="loss on the same logits", xlabel="W3 multiplied by", ylabel="mean cross-entropy")
    ax[0, 1].set(title="largest logit in the batch", xlabel="W3 multiplied by")
    for a in ax[0]:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return fig


def plot_experiment_initialization(results):
    """The figure of ``digitbench experiment initialization``, from its Results."""
    runs, recipe, backend = (results.plot[k] for k in ("runs", "recipe", "backend"))
    fig, ax = new_figure(1, 2, width=11, height=3.8)
    colors = dict(zip(runs, ("tab:gray", "tab:brown", "tab:orange", "tab:red", "tab:blue")))
    for kind, r in runs.items():
        losses = np.asarray(r["losses"], dtype=np.float64)
        ax[0, 0].plot(smooth(np.where(np.isfinite(losses), losses, np.nan), 20), color=colors[kind], lw=1.2,
                      label=kind)
        h = r["history"]
        ax[0, 1].plot([e["epoch"] for e in h], [100 * e["test_accuracy"] for e in h], "o-", color=colors[kind],
                      label=kind)
    ax[0, 0].set(title="training loss (mean of 20 steps)", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax[0, 1].set(title="test accuracy", xlabel="epoch", ylabel="%", ylim=(0, 100))
    ax[0, 1].xaxis.get_major_locator().set_params(integer=True)
    for a in ax[0]:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle(f"initial weights, seed recipe, {recipe['epochs']} epochs, {backend}", fontsize=10)
    return fig


def plot_experiment_conv_no_flip(results):
    """The figure of ``digitbench experiment conv-no-flip``, from its Results: each
    checked entry's relative error, the correct backward beside the one without the flip."""
    errors, tolerance, below = (results.plot[k] for k in ("errors", "tolerance", "below"))
    fig, ax = new_figure(1, 1, width=7, height=4)
    a = ax[0, 0]
    for k, tensor in enumerate(errors):
        for offset, (version, color, what) in zip((-0.18, 0.18), (("correct", "tab:blue", results.plot["backend"]),
                                                                  ("no flip", "tab:red", "numpy"))):
            e = np.maximum(errors[tensor][version], 1e-16)  # an exact match drawn at the bottom
            a.bar(k + offset, e.max(), width=0.32, color=color, alpha=0.35,
                  label=f"{version} dX, {what} ops (largest)" if k == 0 else None)
            a.plot(np.full(len(e), k + offset), e, "o", color=color, ms=3)
    a.axhline(tolerance, color="k", ls=":", lw=1, label=f"tolerance {tolerance:g}")
    a.set_xticks(range(len(errors)), [f"{t}\n({'below' if t in below else 'at'} conv2)" for t in errors])
    a.set(yscale="log", ylim=(1e-12, 3), ylabel="relative error vs central differences",
          title=f"conv2's dX with and without the kernel flip ({results.plot['images']} images, float64)")
    a.legend(fontsize=8, loc="center right")
    a.grid(alpha=0.3, axis="y")
    return fig
