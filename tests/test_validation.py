"""A held-out validation split: the last N training images, recorded every epoch, and the
set that choices (target checks, the curves' best epoch) are made on."""

import json

import numpy as np
import pytest

from digitbench import cli, split_validation, train
from digitbench.datasets import synthetic_data
from digitbench.errors import UsageError
from digitbench.plots import plot_history


def test_split_validation_holds_out_the_last_images():
    data = synthetic_data(n_train=100, n_test=10)
    kept, (images, labels) = split_validation(data, 30)
    assert kept.train_images.shape == (70, 784) and images.shape == (30, 784) and labels.shape == (30,)
    assert (images == data.train_images[70:]).all() and (kept.test_images == data.test_images).all()


@pytest.mark.parametrize("n", [0, 100, 101])
def test_split_validation_refuses_what_leaves_nothing(n):
    with pytest.raises(UsageError, match="--validation"):
        split_validation(synthetic_data(n_train=100, n_test=10), n)


def test_validation_accuracy_is_in_the_history_and_the_summary():
    data, validation = split_validation(synthetic_data(n_train=300, n_test=50), 100)
    result = train("numpy", data, validation=validation, epochs=2, batch_size=50, progress=False)
    assert all(0 <= h["validation_accuracy"] <= 1 for h in result.history)
    summary = result.summary()
    assert summary["validation_images"] == 100
    assert summary["validation_accuracy"] == result.history[-1]["validation_accuracy"]


def test_the_curves_choose_on_validation(tmp_path, monkeypatch):
    titles = []
    import matplotlib.axes

    real = matplotlib.axes.Axes.set

    def spy(self, **kw):
        titles.append(kw.get("title", ""))
        return real(self, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set", spy)
    history = [{"epoch": e, "loss": 1 / e, "train_accuracy": 0.9, "test_accuracy": t, "validation_accuracy": v}
               for e, t, v in [(1, 0.95, 0.90), (2, 0.90, 0.96), (3, 0.97, 0.93)]]
    plot_history(history, tmp_path / "curves.png")
    assert any("validation: 93.00% last, 96.00% best at epoch 2" in t for t in titles), titles


def test_the_command_line_holds_out_and_reports(data_dir, tmp_path, capsys):
    code = cli.main(["train", "--backend", "numpy", "--data-dir", str(data_dir), "--epochs", "1", "--out", "",
                     "--validation", "59000", "--quiet", "--json", "--plot", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert code == 0 and "valid " in out and "validation accuracy" in out
    record = json.loads(out.strip().splitlines()[-1])
    assert record["validation_images"] == 59000 and 0 < record["validation_accuracy"] <= 1


def test_target_checks_use_the_validation_set_not_the_test_set(monkeypatch):
    import importlib

    train_module = importlib.import_module("digitbench.train")  # the module; digitbench.train is the function

    sizes = []
    real = train_module._Run._accuracy

    def spy(self, state, X, labels):
        sizes.append(len(X))
        return real(self, state, X, labels)

    monkeypatch.setattr(train_module._Run, "_accuracy", spy)
    data, validation = split_validation(synthetic_data(n_train=330, n_test=50), 30)
    train("numpy", data, validation=validation, epochs=1, batch_size=30, target_accuracy=0.99, progress=False)
    checks = sizes[:-3]  # the epoch's end measures test, train sample and validation
    assert checks and set(checks) == {30}, sizes
