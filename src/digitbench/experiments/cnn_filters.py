"""What the CNN's first layer learns: its 16 filters, and the maps they make of one digit.

The CNN is trained with :func:`digitbench.train.train` and the ``cnn`` recipe (SGD batch
64, momentum 0.9, cosine schedule; ``--epochs`` overrides its 4 epochs, ``--momentum``
its momentum). Its first layer, conv1, is 16 filters ``W1[o, 0]`` of 5 x 5 weights (one
input channel, padding 2), each slid over the whole image:

    z[o, r, s] = b1[o] + sum_{u,v} x[r+u-2, s+v-2] W1[o, 0, u, v]

so map ``o`` is large wherever the ink around (r, s) looks like filter ``o``'s positive
part and not its negative part. After ReLU, ``a = max(z, 0)`` keeps where the filter
answers; 2 x 2 max pooling keeps the largest of each window (28 x 28 -> 14 x 14), which
is what conv2 sees.

The figure shows the 16 filters at their He initialisation, after training, and what
training changed (the difference); then the test digit :data:`DIGIT` and its 16 maps
after ReLU and after pooling (each tile scaled to its own largest value). The maps are
computed with the NumPy layer ops.
"""

import numpy as np

from ..kernels.layer_pass import forward_cache
from ..networks import CNN, init_params, n_params
from ..pixels import scale_pixels
from ..train import train
from .common import Results, format_table, percent, recipe_overrides

#: Index of the test digit whose feature maps are shown (the first test image, a 7).
DIGIT = 0


def layer_index(kind, network=CNN):
    """Position of the first layer of ``kind`` ("relu", "maxpool") in ``network.layers``."""
    return next(k for k, layer in enumerate(network.layers) if layer.kind == kind)


def first_maps(params, image):
    """conv1's maps of one image after ReLU (16, 28, 28) and after pooling (16, 14, 14).

    ``image`` of shape (784,), uint8. ``forward_cache``'s list holds each layer's input,
    so layer ``k``'s output is entry ``k + 1``.
    """
    xs = forward_cache(CNN, params, scale_pixels(image[None], params.W1.dtype), "numpy")
    return xs[layer_index("relu") + 1][0], xs[layer_index("maxpool") + 1][0]


def compute(args, data, backend):
    """Train the CNN, then its filters and one digit's maps as a Results (nothing drawn)."""
    result = train(backend.name, data, recipe="cnn", epochs=args.epochs, seed=args.seed, **recipe_overrides(args))
    params = result.params
    initial = init_params(CNN, args.seed, params.W1.dtype)
    relu_maps, pooled_maps = first_maps(params, data.test_images[DIGIT])
    filters = np.asarray(params.W1[:, 0], dtype=np.float64)  # (16, 5, 5)
    strongest = np.argsort(-relu_maps.reshape(len(relu_maps), -1).max(axis=1))
    rows = [[f"filter {o}", f"{np.abs(filters[o]).max():.3f}", f"{float(relu_maps[o].max()):.3f}",
             f"{100 * float((relu_maps[o] > 0).mean()):.0f}%"] for o in strongest[:4]]
    label = int(data.test_labels[DIGIT])
    lines = [
        f"the CNN ({n_params(CNN):,} parameters), recipe cnn for {result.epochs_run} "
        f"epoch{'s' * (result.epochs_run != 1)} on "
        f"{len(data.train_labels)} training images ({result.backend} backend, seed {args.seed})",
        format_table(["", "test accuracy", "training time"],
                     [["cnn", percent(result.test_accuracy), f"{result.train_seconds:.1f} s"]]),
        "",
        f"conv1's 16 filters (5 x 5) and its maps of test image {DIGIT} (a {label}); the four filters that answer "
        "it most strongly:",
        format_table(["", "largest |weight|", "largest map value", "map > 0"], rows),
    ]
    record = {"network": "cnn", "parameters": n_params(CNN), "recipe": "cnn", "epochs": result.epochs_run,
              "seed": args.seed, "train_images": int(len(data.train_labels)),
              "test_images": int(len(data.test_labels)), "test_accuracy": result.test_accuracy,
              "train_seconds": result.train_seconds, "digit": DIGIT, "digit_label": label,
              "filters": filters.tolist(), "relu_max": relu_maps.reshape(len(relu_maps), -1).max(axis=1).tolist()}
    return Results(lines, record, dict(filters=filters, initial=np.asarray(initial.W1[:, 0], dtype=np.float64),
                                       image=np.asarray(data.test_images[DIGIT]).reshape(28, 28), label=label,
                                       relu_maps=relu_maps, pooled_maps=pooled_maps, epochs=result.epochs_run,
                                       test_accuracy=result.test_accuracy))
