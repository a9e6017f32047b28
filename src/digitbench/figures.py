"""The figure helpers every plot shares: a matplotlib figure on the Agg backend, and its
atomic save as PNG (through :func:`digitbench.files.write_file`)."""

from .drawing import import_matplotlib
from .files import write_file

#: Resolution of the saved figures, dots per inch.
DPI = 80


def new_figure(nrows=1, ncols=1, width=10, height=4, **options):
    """A matplotlib figure and a 2-d array of axes on the Agg backend (no display needed).

    matplotlib is imported here, on first use: ``import digitbench`` does not load it.
    """
    plt = import_matplotlib().pyplot
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **options)


def save_figure(fig, path, dpi=DPI, tight=True, colors=None):
    """Write ``fig`` as PNG to ``path`` atomically and close it; returns ``path``.

    ``tight``: lay it out with ``tight_layout`` first (not for a constrained layout).
    ``colors``: store it as a palette PNG of that many colours (Pillow's quantizer), for
    pictures of many small cells that would otherwise take hundreds of KB.
    """
    import io

    plt = import_matplotlib().pyplot

    def save(f):
        if colors is None:
            return fig.savefig(f, format="png", dpi=dpi)
        from PIL import Image

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        buffer.seek(0)
        with Image.open(buffer) as image:
            image.convert("RGB").quantize(colors).save(f, format="PNG", optimize=True)

    try:
        if tight:
            fig.tight_layout()
        return write_file(path, save)
    finally:
        plt.close(fig)
