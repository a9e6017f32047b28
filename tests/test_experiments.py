"""`digitbench experiment NAME`: each one runs on a small subset and writes its table and PNG.

The experiments' own NumPy network is checked against the NumPy backend (ReLU, stable
softmax) and against central differences (sigmoid), so that what the sigmoid and
learning-rate experiments report is about the activation and the softmax, not a bug.
"""

import json

import numpy as np
import pytest

from digitbench import cli, get_backend, init_params
from digitbench.experiments.initialization import distinct_columns, initial_params
from digitbench.experiments.network import ActivationNet
from digitbench.experiments.softmax_overflow import losses, naive_softmax

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path):
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100


@pytest.mark.parametrize("name, expect", [
    ("sigmoid", "sigmoid"),
    ("softmax-overflow", "NaN grads f32"),
    ("learning-rate", "NaN in epoch 1"),
    ("initialization", "distinct W1 columns"),
    ("conv-no-flip", "uses conv2's dX"),
])
def test_experiment_writes_table_and_figure(name, expect, data_dir, tmp_path, capsys):
    code = cli.main(["experiment", name, "--backend", "numpy", "--data-dir", str(data_dir), "--out-dir", str(tmp_path),
                     "--subset", "2000", "--test-subset", "1000", "--epochs", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert expect in out
    record = json.loads(out.strip().splitlines()[-1])
    assert record["experiment"] == name and record["backend"] == "numpy"
    check_png(tmp_path / f"experiment-{name}.png")


@pytest.mark.parametrize("command", [["experiment", "softmax-overflow", "--momentum", "5"],
                                     ["plot", "--model", "none.npz"]])
def test_out_dir_is_created_or_one_line(tmp_path, capsys, monkeypatch, command):
    """A missing --out-dir is created only for the files (a refused command leaves no
    folder behind); a file in its way is one line (exit 1)."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "new" / "plots"
    # a bad --momentum, or a missing model, stops the run once the options are parsed
    assert cli.main([*command, "--out-dir", str(missing)]) == 1
    assert not (tmp_path / "new").exists()
    capsys.readouterr()
    (tmp_path / "file").write_text("x")
    assert cli.main([*command, "--out-dir", str(tmp_path / "file" / "sub")]) == 1
    err = capsys.readouterr().err
    assert ("is not a folder" in err or "--momentum" in err) and len(err.strip().splitlines()) == 1


def batch(n=16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)), rng.integers(0, 10, n)


def test_naive_softmax_network_matches_the_stable_one_where_nothing_overflows():
    """ActivationNet is the NumPy backend with switches; the naive softmax is a different
    computation of the same function, equal to rounding while the logits are small."""
    params = init_params(0, np.float64)
    X, y = batch()
    loss, grads = ActivationNet("relu", softmax="naive").loss_and_grads(params, X, y)
    ref_loss, ref_grads = get_backend("numpy").loss_and_grads(params, X, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name, g, r in zip(ref_grads._fields, grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-14, err_msg=name)
    sigmoid_loss, _ = ActivationNet("sigmoid").loss_and_grads(params, X, y)
    assert abs(sigmoid_loss - ref_loss) > 1e-3  # the switch switches


def test_sigmoid_gradients_match_central_differences():
    # float64 central differences with h = 1e-6: truncation error ~h^2, rounding ~1e-16/h,
    # so 1e-6 relative agreement is far inside both.
    params = init_params(0, np.float64)
    X, y = batch()
    net = ActivationNet("sigmoid")
    _, grads = net.loss_and_grads(params, X, y)
    rng = np.random.default_rng(2)
    h = 1e-6
    for k, name in enumerate(params._fields):
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in params[k].shape)
            plus = [a.copy() for a in params]
            minus = [a.copy() for a in params]
            plus[k][idx] += h
            minus[k][idx] -= h
            numeric = (net.loss_and_grads(type(params)(*plus), X, y)[0]
                       - net.loss_and_grads(type(params)(*minus), X, y)[0]) / (2 * h)
            assert grads[k][idx] == pytest.approx(numeric, rel=1e-6, abs=1e-10), f"{name}{idx}"


def test_gradient_norms_are_recorded_every_few_steps():
    params = init_params(0)
    X, y = batch()
    net = ActivationNet("sigmoid", every=2)
    for _ in range(5):
        net.loss_and_grads(params, X, y)
    assert [row[0] for row in net.norms] == [0, 2, 4]
    assert all(0 < row[4] <= 0.25 for row in net.norms)  # mean sigmoid'(z1) <= 1/4


def test_naive_softmax_overflows_where_the_stable_one_does_not():
    z = np.array([[90.0, 80.0, 0.0]], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(naive_softmax(z)[0, 0])  # exp(90) = inf in float32; inf / inf = NaN
    naive, stable, nan_grads = losses(z, np.array([0]))
    assert np.isnan(naive) and nan_grads > 0
    # Stable loss = log(1 + e^-10 + e^-90) = 4.54e-5, computed in float32 as (90 + 4.54e-5) - 90:
    # float32's spacing at 90 is 2**-17 = 7.6e-6, so agreement to 8e-6 absolute is what it can do.
    assert stable == pytest.approx(np.log1p(np.exp(-10.0) + np.exp(-90.0)), abs=8e-6)
    # The same logits in float64 are harmless for both.
    naive64, stable64, _ = losses(z.astype(np.float64), np.array([0]))
    assert naive64 == pytest.approx(stable64, rel=1e-12)


def test_initializations():
    zero = initial_params("zero", 0)
    assert all(not a.any() for a in zero)
    # Zero weights: every gradient of a weight matrix is exactly zero (relu'(0) = 0 here).
    X, y = batch()
    _, grads = get_backend("numpy").loss_and_grads(zero, X.astype(np.float32), y)
    assert not grads.W1.any() and not grads.W2.any() and not grads.W3.any() and grads.b3.any()
    assert distinct_columns(initial_params("constant", 0).W1) == 1
    assert distinct_columns(initial_params("he", 0).W1) == 128
    he = init_params(0)
    np.testing.assert_allclose(initial_params("too large", 0).W2, 10 * he.W2, rtol=1e-6)


def _args(**overrides):
    from types import SimpleNamespace

    return SimpleNamespace(**{"seed": 0, "epochs": 1, "momentum": None, "norm_every": 5, **overrides})


def test_experiments_compute_their_numbers_without_drawing(monkeypatch):
    """compute() returns the numbers; no figure is made (drawing it would fail here)."""
    from digitbench import plots
    from digitbench.datasets import MnistData, synthetic_data
    from digitbench.experiments import initialization, softmax_overflow

    def no_drawing(*args, **kwargs):
        raise AssertionError("compute() drew a figure")

    monkeypatch.setattr(plots, "new_figure", no_drawing)
    data = synthetic_data(seed=2)
    data = MnistData(data.train_images[:640], data.train_labels[:640], data.test_images[:200], data.test_labels[:200])
    overflow = softmax_overflow.compute(_args(), data, get_backend("numpy"))
    rows = {r["w3_scale"]: r for r in overflow.record["rows"]["float32"]}
    assert np.isfinite(rows[1.0]["naive_loss"]) and rows[1.0]["naive_loss"] == pytest.approx(rows[1.0]["stable_loss"])
    big = max(rows)
    assert rows[big]["naive_loss"] in ("inf", "nan") and np.isfinite(rows[big]["stable_loss"])
    assert rows[big]["backend_finite"] is True
    init = initialization.compute(_args(), data, get_backend("numpy"))
    by_kind = {r["init"]: r for r in init.record["runs"]}
    assert by_kind["constant"]["distinct_W1_columns"] == 1 and by_kind["he"]["distinct_W1_columns"] == 128
    assert init.lines and set(init.plot) >= {"runs", "recipe", "backend"}


def test_conv_no_flip_fails_below_conv2_and_the_correct_backward_passes():
    """The backward without the kernel flip gives W1's and b1's gradients that finite
    differences reject; conv2's own (W2, b2) and every correct one pass."""
    from digitbench.datasets import synthetic_data
    from digitbench.experiments import conv_no_flip

    results = conv_no_flip.compute(_args(), synthetic_data(seed=3), get_backend("numpy"))
    rows = {r["tensor"]: r for r in results.record["rows"]}
    assert set(rows) == {"W1", "b1", "W2", "b2"}
    assert all(r["correct_ok"] and r["correct_max_rel_error"] < 1e-6 for r in rows.values())
    assert not rows["W1"]["no_flip_ok"] and rows["W1"]["no_flip_max_rel_error"] > 0.1
    assert not rows["b1"]["no_flip_ok"] and rows["b1"]["no_flip_max_rel_error"] > 0.1
    assert rows["W2"]["no_flip_ok"] and rows["b2"]["no_flip_ok"]
    assert results.record["loss"] == results.record["no_flip_loss"]  # the forward pass is untouched


def test_no_flip_backward_is_the_correct_one_for_a_symmetric_kernel():
    """The slip is exactly the missing spatial reversal: on a kernel that is its own
    reverse, the two backwards agree."""
    from digitbench.experiments.conv_no_flip import no_flip_conv2d_backward
    from digitbench.kernels.layer_ops import get_ops

    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 2, 5, 5))
    W = W + W[:, :, ::-1, ::-1]
    X, dY = rng.normal(size=(2, 2, 6, 6)), rng.normal(size=(2, 3, 6, 6))
    for ours, theirs in zip(no_flip_conv2d_backward(dY, X, W, 2), get_ops("numpy").conv2d_backward(dY, X, W, 2)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
