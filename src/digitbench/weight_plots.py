"""The first layer's weights as pictures: one 28 x 28 tile per hidden unit (MLP), or
one 5 x 5 tile per convolution filter (CNN).

Hidden unit k of layer 1 computes ``z1[k] = x @ W1[:, k] + b1[k]``: a weighted sum of
the 784 pixels, so its column ``W1[:, k]`` (784,) has the shape of an image. Drawn as
28 x 28 pixels, red where ink raises the unit's input and blue where it lowers it, a
column shows which strokes the unit looks for. Each tile is scaled to its own largest
``|weight|`` (the colour bar's -1..1), so faint and strong units are equally visible.

The CNN's first layer is 16 filters W1[o, 0] of 5 x 5 weights (one input channel), each
slid over the image: a filter's tile shows the stroke, edge or spot it responds to,
wherever in the image it is.
"""

import numpy as np

from .figures import new_figure, save_figure

WEIGHTS_CAPTION = (
    "Each tile is one hidden unit of layer 1: its 784 input weights (a column of W1) as 28 x 28 pixels, red "
    "positive, blue negative. Most tiles look like noise: the random He initialisation still dominates, because "
    "MNIST's border pixels are always 0 and the weights they feed never change. first-layer-learned.png "
    "subtracts the start and shows what training added.")
LEARNED_CAPTION = (
    "Each tile is one hidden unit of layer 1: its weights minus their random starting values, i.e. what "
    "training changed. Red: ink there raises the unit's input; blue: ink there lowers it. The blobs and strokes "
    "are the pen strokes (and their absence) each unit has learned to detect.")
FILTERS_CAPTION = (
    "Each tile is one filter of the first convolution: its 5 x 5 weights W1[o, 0], red positive, blue negative. "
    "The filter slides over the whole image; it responds most where the ink under it looks like its red part and "
    "not its blue part: an edge, a stroke of one direction, a spot.")
FILTERS_LEARNED_CAPTION = (
    "Each tile is one filter of the first convolution: its 5 x 5 weights minus their random starting values, i.e. "
    "what training changed. Red: ink there raises the filter's output; blue: ink there lowers it.")


def first_layer_tiles(W1):
    """The first layer's weights as tiles (m, h, w) and what one tile is.

    ``W1`` of shape (784, m), the MLP's: each column as 28 x 28 pixels, one hidden unit
    each; of shape (m, 1, kh, kw), the CNN's convolution: each filter's kh x kw weights.

    Returns
    -------
    (ndarray of shape (m, h, w), str such as "hidden units, one 28 x 28 tile each")
    """
    W1 = np.asarray(W1, dtype=np.float64)
    if W1.ndim == 4:
        return W1[:, 0], f"filters, one {W1.shape[2]} x {W1.shape[3]} tile each"
    return W1.T.reshape(W1.shape[1], 28, 28), "hidden units, one 28 x 28 tile each"


def weight_mosaic(W1, cols=16, gap=1):
    """The first layer's tiles (:func:`first_layer_tiles`: the columns of ``W1`` (784, m) as
    28 x 28, or the filters of ``W1`` (m, 1, kh, kw)) in one array, each scaled to [-1, 1].

    Returns
    -------
    ndarray of shape (rows * (h + gap) - gap, cols * (w + gap) - gap), NaN in the gaps
    """
    tiles = first_layer_tiles(W1)[0]
    m, h, w = tiles.shape
    rows = -(-m // cols)
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for k, tile in enumerate(tiles):
        scale = np.abs(tile).max() or 1.0
        r, c = divmod(k, cols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile / scale
    return mosaic


def plot_weights(W1, path, title="first-layer weights (columns of W1)", caption=WEIGHTS_CAPTION):
    """Draw the first layer's weights as tiles (:func:`weight_mosaic`) with a title, a
    colour bar and a caption under the picture that says what it shows; returns ``path``.

    Parameters
    ----------
    W1 : ndarray of shape (784, m), the MLP's, or (m, 1, kh, kw), the CNN's filters; e.g.
        the trained weights, or trained minus initial
    path : where to write the PNG
    title, caption : str, the figure's title and the text under it
    """
    import textwrap

    fig, ax = new_figure(1, 1, 10, 5.9)
    ax = ax[0, 0]
    import matplotlib

    levels = matplotlib.colormaps["RdBu_r"].resampled(24)  # 24 levels: the PNG keeps each exactly (a palette)
    cols = 16 if np.ndim(W1) == 2 else 4  # the MLP's 128 units in 8 rows; the CNN's 16 filters in a square
    image = ax.imshow(weight_mosaic(np.asarray(W1, dtype=np.float64), cols=cols), cmap=levels, vmin=-1, vmax=1,
                      interpolation="nearest")
    ax.set_axis_off()
    tiles, what = first_layer_tiles(W1)
    ax.set_title(f"{title}: {len(tiles)} {what}", fontsize=11)
    bar = fig.colorbar(image, ax=ax, fraction=0.025, pad=0.015, shrink=0.8)
    bar.set_label("weight / the tile's largest |weight|")
    fig.text(0.02, 0.02, textwrap.fill(caption, 140), fontsize=9, va="bottom", ha="left")
    fig.subplots_adjust(left=0.01, right=0.93, top=0.93, bottom=0.14)
    return save_figure(fig, path, tight=False, colors=64)
