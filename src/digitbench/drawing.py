"""matplotlib's setup for every figure, and outside text made safe to draw in one.

:mod:`digitbench.plots` draws every figure through :func:`import_matplotlib` (the Agg
backend, whatever ``MPLBACKEND`` says) and puts text that comes from a file (a model's
metadata) through :func:`figure_text`.
"""

import os
import sys

from .errors import one_line


def import_matplotlib():
    """matplotlib on the Agg backend (files only, no display), imported on first use.

    Every figure here is a PNG file, so the user's ``MPLBACKEND`` (which matplotlib
    validates on import: an unknown name would stop it there) is set to Agg for this
    process before the import.
    """
    if "matplotlib" not in sys.modules:
        os.environ["MPLBACKEND"] = "Agg"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors  # noqa: F401  (makes each an attribute of matplotlib)
    import matplotlib.pyplot  # noqa: F401

    return matplotlib


#: The most characters of outside text (a name from a model file) a figure shows.
MAX_FIGURE_TEXT = 80


def figure_text(value):
    """Text from a file or the command line made safe to draw, shown as it is.

    matplotlib reads ``$...$`` as math and ends in an error on bad math; characters
    that cannot be encoded (a lone surrogate from a file name in another encoding)
    stop its font code; control characters have no glyph. So: ``$`` is escaped,
    anything unencodable or unprintable becomes a backslash escape, and the text is
    cut to :data:`MAX_FIGURE_TEXT` characters.
    """
    text = one_line(str(value)).encode("utf-8", "backslashreplace").decode("utf-8").replace("$", r"\$")
    return text if len(text) <= MAX_FIGURE_TEXT else text[:MAX_FIGURE_TEXT - 3] + "..."
