"""`digitbench bench --network cnn`: the CNN's FLOP count, targets, time to 99%, and small runs.

The end-to-end runs time 128 samples (``--samples``) of synthetic digits on one thread,
so that each takes seconds; they check what is measured and written, not speed.
torch.compile is replaced by the module it would compile (inductor compiles the CNN for
about a minute): the plumbing is the same.
"""

import json

import numpy as np
import pytest

from digitbench import bench, cli, get_backend
from digitbench.datasets import MnistData, synthetic_data
from digitbench.networks import CNN
from digitbench.targets import CNN_TARGETS, check_targets
from digitbench.time_to_target import HEADLINES, closed_recipe, run_fixed

SMALL_RUN = ["bench", "--network", "cnn", "--synthetic", "--samples", "128", "--repeats", "1", "--threads", "1",
             "--no-plot", "--json"]


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cnn_flop_count_by_layer():
    # conv1: 16 x 28 x 28 outputs, each 1 x 5 x 5 products; conv2: 32 x 14 x 14 outputs of 16 x 5 x 5
    assert bench.layer_multiply_adds(CNN) == (16 * 28 * 28 * 25, 32 * 14 * 14 * 16 * 25, 1568 * 128, 128 * 10)
    m = 313_600 + 2_508_800 + 200_704 + 1_280
    assert bench.multiply_adds(CNN) == m == 3_024_384
    # forward 2m + weight grads 2m + input grads of every layer but conv1: 2(m - 313,600)
    assert bench.train_flops_per_sample(CNN) == 6 * m - 2 * 313_600 == 17_519_104
    assert bench.inference_flops_per_sample(CNN) == 2 * m


def test_cnn_bench_times_the_cnn_in_seconds(capsys):
    code, out, err = run(SMALL_RUN + ["--backends", "numpy"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert record["network"] == "cnn" and record["samples"] == 128
    assert record["train_flops_per_sample"] == 17_519_104
    (numpy_record,) = record["contenders"]
    assert numpy_record["train_samples_timed"] == 128 and numpy_record["epoch_extrapolated"]
    assert numpy_record["infer_samples_timed"] == 128 and numpy_record["train_samples_per_s"] > 0
    # the CNN's targets, none judged on a small run; no time to target
    assert [t["of"] for t in record["targets"]] == ["pytorch", "torch.compile", "jax-step", "jax-scan"]
    assert all(t["status"] == "not judged: --samples under 12,800 a repetition" for t in record["targets"])
    assert record["time_to_target"] == {} and "the CNN; " in out


def test_cnn_bench_leaves_the_naive_loops_out_unless_named():
    from digitbench.commands.bench import parse_backends

    assert parse_backends(None, "cnn") == ["numpy", "numba"]
    assert parse_backends(None, "mlp") == ["naive", "numpy", "numba"]
    assert parse_backends("naive", "cnn") == ["naive"]


def test_cnn_bench_with_peers(monkeypatch, capsys):
    torch = pytest.importorskip("torch", reason="needs the compare extra: pip install -e '.[compare]'")
    pytest.importorskip("jax", reason="needs the compare extra: pip install -e '.[compare]'")
    monkeypatch.setattr(torch, "compile", lambda module: module)
    code, out, err = run(SMALL_RUN + ["--backends", "numpy", "--peers"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    names = [r["name"] for r in record["contenders"]]
    assert names == ["numpy", "pytorch", "torch.compile", "jax-step", "jax-scan"]  # scikit-learn has no CNN
    assert all("error" not in r for r in record["contenders"]), record["contenders"]
    numpy_record = record["contenders"][0]
    assert numpy_record["train_vs_pytorch"] > 0 and len(numpy_record["train_vs_pytorch_ci"]) == 2


def test_cnn_targets_are_ratios_of_numba_to_every_peer():
    def record(name, rate):
        return {"name": name, "train_samples_per_s": rate, "train_samples_per_s_reps": [rate] * 5}

    records = [record("numba", 300.0), record("pytorch", 100.0), record("torch.compile", 400.0),
               record("jax-step", 250.0)]
    verdicts = check_targets(records, {"batch_size": 64, "threads": 2, "quick": False}, CNN_TARGETS)
    assert [v["status"] for v in verdicts] == ["met", "not met", "met", "not measured: jax-scan (add --peers)"]
    assert verdicts[0]["target"] == "numba cnn training >= 1.5x pytorch (batch size 64)"


def test_the_cnn_times_to_99_percent_with_its_own_recipe():
    assert HEADLINES["cnn"] == ("cnn-fast", 0.99) and HEADLINES["mlp"] == ("fast", 0.97)
    recipe = closed_recipe("cnn-fast")
    assert recipe["network"] == "cnn" and recipe["center"] is False and recipe["schedule"] == "linear"
    assert closed_recipe()["network"] == "mlp"


def test_a_cnn_contender_runs_the_fixed_recipe():
    data = synthetic_data(5, 64, 16)
    small = MnistData(data.train_images, data.train_labels, data.test_images, data.test_labels)
    contender = bench.BackendContender(get_backend("numpy", network="cnn"))
    contender.prepare(small, 32)
    out = run_fixed(contender, small, closed_recipe("cnn-fast") | {"epochs": 1, "batch_size": 32}, seed=0)
    assert out["epochs"] == 1 and out["seconds"] > 0 and 0 <= out["accuracy"] <= 1
    assert isinstance(contender.weights(), CNN.params_type)
    assert np.isfinite(contender.weights().W3).all()
