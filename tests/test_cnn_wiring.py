"""The CNN wherever a user meets the MLP: recipe, trainer, resume, model files, CLI, gradcheck.

Everything runs on a few hundred real MNIST images for one or two epochs (the CNN's
accuracy is not judged here: that takes full runs).
"""

import json
import zipfile

import numpy as np
import pytest

import digitbench.data as data_mod
import idx_factory
from digitbench import Recipe, get_backend, load_model, save_model
from digitbench.datasets import MnistData
from digitbench.errors import ModelFileError, UsageError
from digitbench.gradcheck import gradcheck
from digitbench.model_io import load_checkpoint
from digitbench.networks import CNN, CnnParams, init_params
from digitbench.params import init_params as mlp_init_params
from digitbench.recipe import learning_rates, run_recipe
from digitbench.train import TrainingInterrupted, TrainState, train
from hostile import attempt

RUN = dict(network="cnn", epochs=2, batch_size=64, dtype="float64", seed=3)


@pytest.fixture(scope="module")
def small(mnist_data):
    return MnistData(mnist_data[0][:192], mnist_data[1][:192], mnist_data[2][:60], mnist_data[3][:60])


@pytest.fixture(scope="module")
def trained(small):
    """Two epochs of the cnn recipe on the numpy backend (3 steps each)."""
    return train("numpy", small, progress=False, **RUN)


@pytest.fixture
def small_dir(small, tmp_path, monkeypatch):
    """The small slice as four raw IDX files, their checksums patched in; cwd is tmp_path."""
    folder = tmp_path / "data"
    sums, _ = idx_factory.write_dataset(folder, gz=False, data=small)
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    monkeypatch.chdir(tmp_path)
    return folder


def _same(a, b):
    return type(a) is type(b) and all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b))


# --------------------------------------------------------------------------- recipe


def test_cosine_schedule_falls_from_lr_to_near_zero_over_the_run():
    lrs = learning_rates("cosine", 0.05, 0.0, 2, 4)  # 8 steps
    assert lrs[0] == 0.05 and np.isclose(lrs[4], 0.025) and 0 < lrs[-1] < 0.002
    assert np.all(np.diff(lrs) < 0)
    expected = 0.05 * (1 + np.cos(np.pi * np.arange(8) / 8)) / 2
    assert np.allclose(lrs, expected, rtol=0, atol=1e-15)


def test_the_cnn_recipe():
    recipe = Recipe.named("cnn")
    assert run_recipe(None, {"network": "cnn"}) == recipe and run_recipe(None, {}) == Recipe.named("seed")
    assert (recipe.network, recipe.epochs, recipe.batch_size, recipe.lr, recipe.momentum, recipe.schedule,
            recipe.center) == ("cnn", 4, 64, 0.05, 0.9, "cosine", False)
    assert Recipe().network == "mlp" and Recipe.named("fast").network == "mlp"


@pytest.mark.parametrize("make, words", [
    (lambda: Recipe(network="resnet"), "--network must be one of mlp, cnn"),
    (lambda: Recipe(network="cnn", center=True), "--center is for the mlp only"),
    (lambda: Recipe.named("fast", network="cnn"), "the fast recipe centres its inputs"),
    (lambda: run_recipe("fast", {"network": "cnn"}), "the fast recipe centres its inputs"),
    (lambda: run_recipe(None, {"network": "mlp"}, "cnn"), "the starting parameters are the cnn's"),
])
def test_recipes_that_make_no_sense_are_one_line(make, words):
    with pytest.raises(UsageError, match=words) as info:
        make()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- trainer


def test_train_the_cnn_through_the_api(small, trained):
    assert isinstance(trained.params, CnnParams) and trained.params.W1.dtype == np.float64
    assert trained.config["network"] == "cnn" and trained.config["schedule"] == "cosine"
    assert trained.epochs_run == 2 and 0 <= trained.test_accuracy <= 1
    assert trained.history[1]["loss"] < trained.history[0]["loss"]
    again = train(get_backend("numpy"), small, recipe=Recipe.named("cnn", **RUN), progress=False)
    assert _same(trained.params, again.params)  # an MLP backend object stands for its name


def test_train_from_cnn_params_trains_the_cnn(small):
    start = init_params(CNN, 5, np.float64)
    result = train("numpy", small, params=start, epochs=1, progress=False)
    assert isinstance(result.params, CnnParams) and result.config["network"] == "cnn"
    with pytest.raises(UsageError, match="parameters are the cnn's"):
        train("numpy", small, params=start, network="mlp", epochs=1, progress=False)


def test_a_resumed_cnn_run_has_the_same_bits(small, trained, tmp_path, monkeypatch):
    backend = get_backend("numpy", "cnn")
    real, calls = backend.train_batches, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # epoch 2, step 1 (3 steps an epoch, a chunk each)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(backend, "train_batches", flaky)
        with pytest.raises(TrainingInterrupted) as info:
            train(backend, small, progress=False, **RUN)
    path = info.value.checkpoint.save(tmp_path / "c.npz")
    params, velocity, _, meta = load_checkpoint(path)
    assert isinstance(params, CnnParams) and isinstance(velocity, CnnParams) and meta["network"] == "cnn"
    loaded, _ = TrainState.load(path)
    resumed = train(backend, small, resume=loaded, progress=False)
    assert _same(trained.params, resumed.params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in trained.history]


def test_numba_trains_the_cnn_too(small):
    result = train("numba", MnistData(small[0][:128], small[1][:128], small[2][:50], small[3][:50]), progress=False,
                   network="cnn", epochs=1)
    assert isinstance(result.params, CnnParams) and np.isfinite(result.history[0]["loss"])


# --------------------------------------------------------------------------- model files


def test_a_cnn_model_file_round_trips(trained, tmp_path):
    path = trained.save(tmp_path / "cnn.npz", dataset="mnist", recipe="cnn")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(f"{n}.npy" for n in (*CnnParams._fields, "meta"))
    model = load_model(path)
    assert model.network == "cnn" and model.meta["network"] == "cnn" and "layer_sizes" not in model.meta
    assert _same(trained.params, model.params)
    assert repr(model).startswith("Model(network=cnn, dtype=float64")


def test_a_cnn_model_predicts_on_any_backend_name(trained, small):
    images = small.test_images[:20]
    expected = get_backend("numpy", "cnn").predict(trained.params, images)
    assert np.array_equal(trained.model.predict(images), expected)
    assert np.array_equal(trained.model.predict(images[:2], backend=get_backend("naive")), expected[:2])
    assert trained.model.predict_proba(images).shape == (20, 10)


def _rewrite(path, arrays=None, **meta_changes):
    """The model file at ``path`` with some arrays and metadata keys replaced (None: removed)."""
    with np.load(path) as f:
        members = {k: f[k] for k in f.files}
    meta = json.loads(str(members.pop("meta")))
    meta.update(meta_changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    members.update(arrays or {})
    np.savez(path, **{k: v for k, v in members.items() if v is not None}, meta=np.array(json.dumps(meta)))
    return path


def test_an_old_mlp_file_without_the_network_still_loads(tmp_path):
    params = mlp_init_params(1)
    path = _rewrite(save_model(tmp_path / "old.npz", params, dataset="mnist", seed=1), network=None)
    model = load_model(path)
    assert "network" not in model.meta and model.network == "mlp" and _same(params, model.params)


@pytest.mark.parametrize("change, words", [
    (dict(arrays={"W3": np.zeros((10,), np.float64)}), "W3 has shape (10,), expected (1568, 128) (the cnn's)"),
    (dict(network="transformer"), "unknown network 'transformer' in metadata (this digitbench reads mlp, cnn)"),
    (dict(network="mlp"), "layer sizes None differ"),
    (dict(network="mlp", layer_sizes=[784, 128, 64, 10]), "metadata says network 'mlp' but its recipe trained"),
    (dict(arrays={"W4": None, "b4": None}, network="mlp", layer_sizes=[784, 128, 64, 10], config=None),
     "W1 has shape (16, 1, 5, 5), expected (784, 128)"),
    (dict(arrays={"b4": None}), "missing b4"),
])
def test_hostile_cnn_files_get_one_line(trained, tmp_path, capsys, change, words):
    path = _rewrite(trained.save(tmp_path / "bad.npz"), **change)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert words in str(info.value) and "\n" not in str(info.value)
    attempt(capsys, ["evaluate", "--model", path, "--backend", "numpy"], status=1, words=[words])


# --------------------------------------------------------------------------- command line


def test_cli_train_evaluate_predict_plot_the_cnn(small, small_dir, tmp_path, capsys):
    argv = ["train", "--network", "cnn", "--backend", "numpy", "--epochs", "1", "--data-dir", small_dir, "--quiet",
            "--out", "cnn.npz", "--json"]
    _, out, _ = attempt(capsys, argv, status=0, words=["saved cnn.npz"])
    summary = json.loads(out.splitlines()[-1])
    assert summary["network"] == "cnn" and summary["recipe"] == "cnn" and summary["schedule"] == "cosine"
    assert load_model("cnn.npz").network == "cnn"
    _, out, _ = attempt(capsys, ["evaluate", "--model", "cnn.npz", "--backend", "numpy", "--data-dir", small_dir,
                                 "--json"], status=0, words=["(cnn, numpy backend)"])
    assert json.loads(out.splitlines()[-1])["network"] == "cnn"
    digit = tmp_path / "digit.png"
    from PIL import Image
    Image.fromarray(small.test_images[0].reshape(28, 28)).save(digit)
    attempt(capsys, ["predict", "--model", "cnn.npz", "--backend", "numpy", digit], status=0, words=["digit.png: "])
    attempt(capsys, ["plot", "--model", "cnn.npz", "--backend", "numpy", "--data-dir", small_dir, "--out-dir", "figs"],
            status=0, words=["first-layer-weights.png", "first-layer-learned.png"])
    assert (tmp_path / "figs" / "first-layer-weights.png").stat().st_size > 0


@pytest.mark.parametrize("argv, words", [
    (["--recipe", "fast", "--network", "cnn"], "the fast recipe centres its inputs, which only the mlp does"),
    (["--network", "cnn", "--center"], "--center is for the mlp only"),
    (["--network", "rnn"], "invalid choice: 'rnn'"),
])
def test_cli_train_refuses_what_makes_no_sense(small_dir, capsys, argv, words):
    code, out, err = attempt(capsys, ["train", "--backend", "numpy", "--data-dir", small_dir, "--quiet", *argv],
                             words=[words])
    assert err.count("\n") == 1


def test_cli_resume_keeps_the_network(small_dir, capsys, monkeypatch):
    backend = get_backend("numpy", "cnn")
    real, calls = backend.train_batches, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "train_batches", flaky)
    base = ["train", "--backend", "numpy", "--epochs", "1", "--data-dir", small_dir, "--quiet", "--out", "m.npz"]
    attempt(capsys, [*base, "--network", "cnn"], status=130, words=["saved the checkpoint m.checkpoint.npz"])
    attempt(capsys, ["train", "--resume", "m.checkpoint.npz", "--network", "mlp", "--data-dir", small_dir],
            words=["--network mlp contradicts the checkpoint"])
    attempt(capsys, ["train", "--resume", "m.checkpoint.npz", "--data-dir", small_dir, "--quiet"], status=0,
            words=["saved"])
    assert load_model("m.npz").network == "cnn"


# --------------------------------------------------------------------------- gradient check


def test_cli_gradcheck_checks_every_cnn_parameter(capsys):
    _, out, _ = attempt(capsys, ["gradcheck", "--network", "cnn", "--backend", "numpy", "--entries", "3", "--json"],
                        status=0, words=["numpy, cnn: central differences"])
    record = json.loads(out.splitlines()[-1])
    assert record["network"] == "cnn" and record["ok"]
    assert [r["tensor"] for r in record["results"]["numpy"]] == list(CnnParams._fields)


class _BrokenConv2:
    """The numpy CNN backend with conv2's weight gradient off by 1%."""

    name = "numpy"
    network = CNN

    def __init__(self):
        self.real = get_backend("numpy", "cnn")

    def forward(self, params, X, threads=1):
        return self.real.forward(params, X)

    def loss_and_grads(self, params, X, y):
        loss, grads = self.real.loss_and_grads(params, X, y)
        return loss, grads._replace(W2=grads.W2 * 1.01)


def test_gradcheck_catches_a_broken_cnn_gradient():
    records = {r["tensor"]: r["ok"] for r in gradcheck(_BrokenConv2(), entries=3)}
    assert records.pop("W2") is False and all(records.values())
