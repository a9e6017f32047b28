"""The figures of the CNN experiments (``digitbench experiment cnn-filters`` and
``shifted-digits``), drawn from the Results their ``compute`` returned.

The filter and map tiles are laid out by :func:`digitbench.weight_plots.weight_mosaic`,
each tile scaled to its own largest absolute value.
"""

import numpy as np

from .figures import new_figure
from .weight_plots import weight_mosaic

#: Colours of the two networks in the shifted-digits figure.
COLORS = {"mlp": "tab:orange", "cnn": "tab:blue"}


def show_tiles(ax, tiles, title, cmap, vmin):
    """Draw ``tiles`` (m, h, w) on ``ax`` as a 4-column mosaic, each scaled to [-1, 1]
    (``vmin`` -1, signed weights) or [0, 1] (``vmin`` 0, maps after ReLU)."""
    ax.imshow(weight_mosaic(np.asarray(tiles, dtype=np.float64)[:, None], cols=4), cmap=cmap, vmin=vmin, vmax=1,
              interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def plot_experiment_cnn_filters(results):
    """The figure of ``digitbench experiment cnn-filters``: conv1's filters at their He
    start, after training and their difference, the test digit, and its 16 maps after
    ReLU and after pooling."""
    p = results.plot
    fig, ax = new_figure(1, 6, width=18, height=3.6)
    show_tiles(ax[0, 0], p["initial"], "conv1 filters at the start (He)", "RdBu_r", -1)
    show_tiles(ax[0, 1], p["filters"], f"after {p['epochs']} epoch{'s' * (p['epochs'] != 1)}", "RdBu_r", -1)
    show_tiles(ax[0, 2], p["filters"] - p["initial"], "what training changed", "RdBu_r", -1)
    ax[0, 3].imshow(p["image"], cmap="gray_r", interpolation="nearest")
    ax[0, 3].set_title(f"test digit (a {p['label']})", fontsize=10)
    ax[0, 3].set_axis_off()
    show_tiles(ax[0, 4], p["relu_maps"], "its 16 maps after ReLU (28 x 28)", "magma", 0)
    show_tiles(ax[0, 5], p["pooled_maps"], "after 2 x 2 max pooling (14 x 14)", "magma", 0)
    fig.suptitle(f"the CNN's first layer (test accuracy {100 * p['test_accuracy']:.2f}%): filters red positive, "
                 "blue negative; maps bright where the filter answers", fontsize=11)
    return fig


def plot_experiment_shifted_digits(results):
    """The figure of ``digitbench experiment shifted-digits``: test accuracy against the
    shift in pixels, one line per network (the mean of the four directions), the band
    from the worst direction to the best."""
    runs, shifts = results.plot["runs"], results.plot["shifts"]
    fig, ax = new_figure(1, 1, width=7, height=4.2)
    a = ax[0, 0]
    for network, run in runs.items():
        by_direction = 100 * np.array(list(run["accuracy"].values()))  # (directions, shifts)
        a.fill_between(shifts, by_direction.min(axis=0), by_direction.max(axis=0), color=COLORS[network], alpha=0.2)
        a.plot(shifts, 100 * np.array(run["mean_accuracy"]), "o-", color=COLORS[network],
               label=f"{network.upper()} ({run['parameters']:,} parameters, {run['epochs']} epoch"
                     f"{'s' * (run['epochs'] != 1)})")
    a.set(xticks=shifts, ylim=(0, 100), xlabel="shift in pixels (right, down, left, up; zero-filled)",
          ylabel="test accuracy (%)",
          title=f"moved test digits ({results.plot['test_images']} images): mean of four directions, band = range")
    a.legend(fontsize=9, loc="lower left")
    a.grid(alpha=0.3)
    return fig
