"""Pictures of a trained model, as PNG files (matplotlib, Agg backend: no display needed).

``digitbench plot --model PATH --out-dir DIR`` writes five of them:

=========================  ================================================================
training-curves.png        loss, train and test accuracy per epoch (the ``history`` that
                           ``digitbench train`` saves in the model file's metadata)
confusion-matrix.png       10 x 10 test-set counts, row = true digit, column = predicted
misclassified.png          the test digits the model gets wrong with the most confidence
first-layer-weights.png    the 128 columns of W1 (784,) drawn as 28 x 28 images
first-layer-learned.png    the same for W1 minus its He initialisation: what training added
=========================  ================================================================

``digitbench train`` starts from ``init_params(seed)``, and the model file records the
seed, so the initial weights can be rebuilt exactly. In the raw weights the random
initial noise still dominates: the border pixels of MNIST are always 0, so the weights
they feed never receive a gradient and keep their random starting values.

``digitbench train --plot PATH`` writes the first one at the end of training.
"""

from pathlib import Path

import numpy as np

from .errors import UsageError

FILES = {
    "curves": "training-curves.png",
    "confusion": "confusion-matrix.png",
    "misclassified": "misclassified.png",
    "weights": "first-layer-weights.png",
    "learned": "first-layer-learned.png",
}
DPI = 80


def _figure(width, height, nrows=1, ncols=1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)


def _save(fig, path):
    """PNG at :data:`DPI`, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    from .model_io import atomic_write

    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    plt.close(fig)
    return path


def plot_history(history, path, title=None):
    """Loss and accuracy per epoch.

    Parameters
    ----------
    history : list of dict, one per epoch, with ``epoch``, ``loss``, ``train_accuracy``
        and ``test_accuracy`` (as :func:`digitbench.train.train` records them)
    path : where to write the PNG
    """
    if not history:
        raise UsageError("no training history to plot (the model file has none)")
    epochs = [h["epoch"] for h in history]
    fig, ax = _figure(10, 3.6, 1, 2)
    ax[0, 0].plot(epochs, [h["loss"] for h in history], "o-", ms=3)
    ax[0, 0].set(title="training loss (mean over the epoch)", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    ax[0, 1].plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", ms=3, label="train")
    ax[0, 1].plot(epochs, [100 * h["test_accuracy"] for h in history], "o-", ms=3, label="test")
    best = max(history, key=lambda h: h["test_accuracy"])
    last = history[-1]
    ax[0, 1].set(title=f"accuracy (test: {100 * last['test_accuracy']:.2f}% last, "
                       f"{100 * best['test_accuracy']:.2f}% best at epoch {best['epoch']})",
                 xlabel="epoch", ylabel="%")
    ax[0, 1].legend()
    for a in ax[0]:
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_confusion(matrix, path):
    """The confusion matrix (10, 10) of counts, colour on a log scale, counts written in."""
    from matplotlib.colors import LogNorm

    matrix = np.asarray(matrix)
    fig, ax = _figure(5.2, 4.6)
    a = ax[0, 0]
    image = a.imshow(matrix + 1, cmap="Blues", norm=LogNorm(vmin=1, vmax=matrix.max() + 1))
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            a.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                   color="white" if matrix[i, j] > 0.3 * matrix.max() else "black")
    a.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
          title=f"test set: {matrix.trace()} of {matrix.sum()} right ({100 * matrix.trace() / matrix.sum():.2f}%)")
    fig.colorbar(image, ax=a, label="count + 1 (log)")
    return _save(fig, path)


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
    fig, ax = _figure(cols * 1.2, rows * 1.45, rows, cols)
    for a in ax.flat:
        a.axis("off")
    for a, i in zip(ax.flat, picked):
        p = probabilities[i]
        a.imshow(images[i].reshape(28, 28), cmap="gray_r", interpolation="nearest")
        a.set_title(f"true {labels[i]} → {p.argmax()}\n{100 * p.max():.2f}%", fontsize=8)
    wrong = int(np.sum(probabilities.argmax(axis=1) != labels))
    fig.suptitle(f"the {len(picked)} most confident of {wrong} mistakes on the test set "
                 "(true → predicted, predicted probability)", fontsize=9)
    return _save(fig, path)


def weight_mosaic(W1, cols=16, gap=1):
    """The columns of ``W1`` (784, m) as 28 x 28 tiles in one array, each scaled to [-1, 1].

    Returns
    -------
    ndarray of shape (rows * (28 + gap) - gap, cols * (28 + gap) - gap), NaN in the gaps
    """
    m = W1.shape[1]
    rows = -(-m // cols)
    size = 28 + gap
    mosaic = np.full((rows * size - gap, cols * size - gap), np.nan)
    for k in range(m):
        tile = W1[:, k].reshape(28, 28)
        scale = np.abs(tile).max() or 1.0
        r, c = divmod(k, cols)
        mosaic[r * size:r * size + 28, c * size:c * size + 28] = tile / scale
    return mosaic


def plot_weights(W1, path, zoom=2, colors=24):
    """The 128 first-layer weight vectors (columns of W1) as images; red +, blue -.

    Drawn pixel for pixel (each weight ``zoom`` x ``zoom`` pixels, 16 tiles a row) with
    Pillow rather than through a matplotlib figure, each weight rounded to one of
    ``colors`` levels of the colormap (a palette PNG): the file stays a few tens of KB
    instead of a few hundred.
    """
    import matplotlib

    from PIL import Image

    from .model_io import atomic_write

    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"{path}: folder {path.parent} does not exist")
    mosaic = weight_mosaic(np.asarray(W1, dtype=np.float64))
    # Palette image: index 0 is the white gap, 1..colors the colormap's levels from -1 to +1.
    levels = np.round((np.nan_to_num(mosaic) + 1) / 2 * (colors - 1)).astype(np.uint8) + 1
    levels[np.isnan(mosaic)] = 0
    palette = matplotlib.colormaps["RdBu_r"].resampled(colors)(np.arange(colors))[:, :3]
    image = Image.fromarray(np.kron(levels, np.ones((zoom, zoom), dtype=np.uint8)), mode="P")
    image.putpalette([255, 255, 255] + (255 * palette).round().astype(int).ravel().tolist())
    atomic_write(path, lambda f: image.save(f, format="PNG", optimize=True))
    return path


def write_model_plots(params, meta, data, backend, out_dir):
    """Write the pictures of a model into ``out_dir`` (see :data:`FILES`); returns {kind: path}.

    The curves need ``meta["history"]``, the learned weights ``meta["seed"]``; each is
    skipped when its metadata is missing.
    """
    from .evaluate import confusion_matrix

    out_dir = Path(out_dir)
    X = data.test_images.astype(params.W1.dtype) / 255
    probabilities = np.concatenate([backend.forward(params, X[i:i + 2000]) for i in range(0, len(X), 2000)])
    labels = np.asarray(data.test_labels, dtype=np.int64)
    written = {}
    if meta.get("history"):
        written["curves"] = plot_history(meta["history"], out_dir / FILES["curves"],
                                         title=f"{meta.get('recipe', '')} recipe, {meta.get('backend', '')} backend")
    written["confusion"] = plot_confusion(confusion_matrix(labels, probabilities.argmax(axis=1)),
                                          out_dir / FILES["confusion"])
    written["misclassified"] = plot_misclassified(data.test_images, labels, probabilities,
                                                  out_dir / FILES["misclassified"])
    written["weights"] = plot_weights(params.W1, out_dir / FILES["weights"])
    if isinstance(meta.get("seed"), int):
        from .params import init_params

        initial = init_params(meta["seed"], params.W1.dtype).W1
        written["learned"] = plot_weights(params.W1 - initial, out_dir / FILES["learned"])
    return written


# --------------------------------------------------------------------------- command line


def add_parser(sub):
    from .cli import add_backend_option, add_data_options

    p = sub.add_parser("plot", help="pictures of a trained model: curves, confusion matrix, mistakes, weights")
    p.add_argument("--model", required=True, help="a .npz file written by `digitbench train`")
    p.add_argument("--out-dir", default=".", help="where to write the PNG files (default: .)")
    add_backend_option(p)
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args):
    from .backends import get_backend
    from .cli import print_json
    from .data import load_mnist
    from .model_io import load_model

    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir}: no such folder")
    params, meta = load_model(args.model)
    dataset = meta.get("dataset", args.dataset)
    data = load_mnist(args.data_dir, dataset, progress=False)
    written = write_model_plots(params, meta, data, get_backend(args.backend), out_dir)
    if "curves" not in written:
        print(f"{args.model}: no training history in the model file; skipped {FILES['curves']}")
    for path in written.values():
        print(f"wrote {path}")
    if args.json:
        print_json({"backend": args.backend, "model": str(args.model), "figures": {k: str(v) for k, v in written.items()}})
    return 0



def png_path(text):
    """argparse type for ``--plot PATH``: the folder must exist (checked before training)."""
    import argparse

    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    return path
