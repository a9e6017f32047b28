"""The training progress bar: one bar for the run, on every backend, on a terminal only."""

import io
import sys

import numpy as np
import pytest

from digitbench import train


class Terminal(io.StringIO):
    def isatty(self):
        return True


def tiny_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    return images, labels, images[:64], labels[:64]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_bar_moves_on_every_backend_on_a_terminal(backend, monkeypatch):
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    train(backend, tiny_data(), epochs=2, batch_size=32, progress=True)
    shown = stream.getvalue()
    assert "epoch 2/2 [%s]" % backend in shown
    assert "16/16" in shown  # 2 epochs of 8 steps: the whole run in one bar


@pytest.mark.parametrize("progress, stream", [(True, io.StringIO()), (False, Terminal())])
def test_no_bar_off_a_terminal_or_when_off(progress, stream, monkeypatch):
    monkeypatch.setattr(sys, "stderr", stream)
    train("numpy", tiny_data(), epochs=1, batch_size=32, progress=progress)
    assert stream.getvalue() == ""


def test_the_python_api_page_documents_progress():
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "python-api.md").read_text()
    assert "progress=True" in page and "progress=False" in page
