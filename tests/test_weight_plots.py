"""The first-layer weight pictures carry a title, a colour bar and a caption."""

import re
from pathlib import Path

import numpy as np
import pytest

from digitbench import init_params
from digitbench import weight_plots
from digitbench.weight_plots import LEARNED_CAPTION, WEIGHTS_CAPTION

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("caption", [WEIGHTS_CAPTION, LEARNED_CAPTION])
def test_the_figure_has_a_title_a_colour_bar_and_a_caption(caption, tmp_path, monkeypatch):
    seen = {}
    real = weight_plots.save_figure

    def keep(fig, path, **kw):
        seen["texts"] = [t.get_text() for t in fig.texts]
        seen["titles"] = [a.get_title() for a in fig.axes]
        seen["labels"] = [a.get_ylabel() for a in fig.axes]
        return real(fig, path, **kw)

    monkeypatch.setattr(weight_plots, "save_figure", keep)
    path = weight_plots.plot_weights(init_params(0).W1, tmp_path / "w.png", "a title", caption)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert any("a title" in t and "128 hidden units" in t for t in seen["titles"])
    assert len(seen["texts"]) == 1 and " ".join(seen["texts"][0].split()) == caption
    assert "weight / the tile's largest |weight|" in seen["labels"]  # the colour bar's axis


def test_learn_md_gives_the_command_that_drew_them():
    page = (REPO / "docs" / "learn.md").read_text()
    assert re.search(r"digitbench plot --model \S+ --out-dir docs/images", page)
