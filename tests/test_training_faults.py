"""Training faults: divergence stops clearly; Ctrl-C saves a checkpoint that resumes exactly.

The runs use a small slice of real MNIST (1,500 training and 300 test images), written
as IDX files with their checksums patched in where the command line reads them, so
that each run takes a fraction of a second. "Exactly" means bit-identical weights on
the numpy backend, which is deterministic for the same inputs and thread count.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import idx_factory as f
from digitbench import data as data_mod
from digitbench import get_backend, load_model
from digitbench.cli import main
from digitbench.commands.train import default_checkpoint_path
from digitbench.datasets import MnistData
from digitbench.errors import DigitbenchError, TrainingDiverged, UsageError
from digitbench.train import TrainingInterrupted, TrainState, train

RUN = dict(epochs=3, batch_size=64, lr=0.05, momentum=0.9, schedule="linear", decay=0.0, seed=4)
CLI_RUN = ["--backend", "numpy", "--epochs", "3", "--batch-size", "64", "--lr", "0.05", "--schedule", "linear",
           "--seed", "4", "--quiet"]


@pytest.fixture(scope="module")
def small(mnist_data):
    return MnistData(mnist_data[0][:1500], mnist_data[1][:1500], mnist_data[2][:300], mnist_data[3][:300])


@pytest.fixture(scope="module")
def small_dir(small, tmp_path_factory):
    """The small slice as four raw IDX files, and their checksums."""
    folder = tmp_path_factory.mktemp("small-mnist")
    sums, _ = f.write_dataset(folder, gz=False, data=small)
    return folder, sums


@pytest.fixture
def cli_data(small_dir, monkeypatch):
    folder, sums = small_dir
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    return folder


@pytest.fixture(scope="module")
def full(small):
    """The uninterrupted run that every resumed one must reproduce."""
    return train(get_backend("numpy"), small, **RUN)


def _interrupt_at(monkeypatch, backend, call, partial_steps=0):
    """Make the ``call``-th chunk do ``partial_steps`` steps, then raise KeyboardInterrupt."""
    real = backend.train_batches
    calls = []

    def flaky(params, velocity, images, labels, order, batch_size, lrs, momentum=0.0):
        calls.append(1)
        if len(calls) == call:
            if partial_steps:  # weights half-way through a chunk: must be rolled back
                real(params, velocity, images, labels, order, batch_size, lrs[:partial_steps], momentum)
            raise KeyboardInterrupt
        return real(params, velocity, images, labels, order, batch_size, lrs, momentum)

    monkeypatch.setattr(backend, "train_batches", flaky)


def _same(a, b):
    return all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b))


# --------------------------------------------------------------------------- divergence


def test_divergence_names_epoch_and_learning_rate(small):
    with pytest.raises(TrainingDiverged) as info:
        train(get_backend("numpy"), small, **{**RUN, "lr": 1e5, "schedule": "constant"})
    message = str(info.value)
    assert "training diverged: the loss became" in message and "in epoch 1 " in message
    assert "at learning rate 100000" in message and "try a lower --lr, such as 10000" in message


def test_divergence_via_cli_saves_nothing(cli_data, tmp_path, capsys):
    out = tmp_path / "m.npz"
    code = main(["train", "--data-dir", str(cli_data), "--out", str(out), *CLI_RUN, "--lr", "1e6", "--schedule", "constant"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("digitbench train: error: training diverged: the loss became nan in epoch 1 ")
    assert "at learning rate 1e+06" in err and not out.exists()


# --------------------------------------------------------------------------- resume via the API


@pytest.mark.parametrize("call, partial", [(1, 0), (3, 5), (6, 2), (9, 0)])
def test_interrupt_and_resume_is_bit_identical(small, full, tmp_path, monkeypatch, call, partial):
    """24 steps an epoch, chunks of 6: call 6 is mid-epoch 2, call 9 the start of epoch 3."""
    backend = get_backend("numpy")
    with monkeypatch.context() as m:
        _interrupt_at(m, backend, call, partial)
        with pytest.raises(TrainingInterrupted) as info:
            train(backend, small, **RUN)
    ck = info.value.checkpoint
    assert (ck.epoch, ck.step) == (1 + (call - 1) // 4, 6 * ((call - 1) % 4))
    # through the file format, as the command line does
    loaded, _ = TrainState.load(ck.save(tmp_path / "c.npz"))
    resumed = train(backend, small, resume=loaded, **RUN)
    assert _same(full.params, resumed.params)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.test_accuracy == full.test_accuracy and resumed.epochs_run == 3


def test_interrupt_in_the_epoch_callback(small, full):
    """Ctrl-C while the epoch's line is printed: the last chunk is redone on resume."""
    backend = get_backend("numpy")

    def stop(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train(backend, small, on_epoch=stop, **RUN)
    ck = info.value.checkpoint
    assert (ck.epoch, ck.step, len(ck.history)) == (2, 18, 1)
    assert _same(full.params, train(backend, small, resume=ck, **RUN).params)


@pytest.mark.parametrize("change, words", [
    (dict(lr=0.01), "made with lr = 0.05, this run has 0.01"),
    (dict(epochs=5), "made with epochs = 3"),
    (dict(seed=5), "made with seed = 4"),
])
def test_resume_with_other_settings_is_refused(small, change, words):
    backend = get_backend("numpy")
    ck = _checkpoint(small)
    with pytest.raises(UsageError, match=words):
        train(backend, small, resume=ck, **{**RUN, **change})


def test_resume_on_other_data_is_refused(small):
    ck = _checkpoint(small)
    other = MnistData(small[0][:1000], small[1][:1000], small[2], small[3])
    with pytest.raises(UsageError, match="made on 1500 training images, this data set has 1000"):
        train(get_backend("numpy"), other, resume=ck, **RUN)


def _checkpoint(small):
    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train(get_backend("numpy"), small, on_epoch=stop, **RUN)
    return info.value.checkpoint


# --------------------------------------------------------------------------- resume via the command line


def test_cli_ctrl_c_then_resume_matches_an_uninterrupted_run(cli_data, tmp_path, monkeypatch, capsys):
    whole = tmp_path / "whole.npz"
    assert main(["train", "--data-dir", str(cli_data), "--out", str(whole), *CLI_RUN]) == 0
    out = tmp_path / "m.npz"
    with monkeypatch.context() as m:
        _interrupt_at(m, get_backend("numpy"), 7, partial_steps=3)
        capsys.readouterr()
        code = main(["train", "--data-dir", str(cli_data), "--out", str(out), *CLI_RUN])
    err = capsys.readouterr().err
    checkpoint = tmp_path / "m.checkpoint.npz"
    assert code == 130 and not out.exists() and checkpoint.exists()
    assert err == (f"digitbench train: interrupted in epoch 2 at step 12 of 24; saved the checkpoint {checkpoint}; "
                   f"continue with: digitbench train --resume {checkpoint} --data-dir {cli_data}\n")
    assert main(["train", "--resume", str(checkpoint), "--data-dir", str(cli_data), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert f"resuming {checkpoint}: epoch 2, step 12 of 24" in stdout and f"saved {out}" in stdout
    (a, meta_a), (b, meta_b) = load_model(whole), load_model(out)
    assert _same(a, b) and meta_a["history"][-1]["loss"] == meta_b["history"][-1]["loss"]


@pytest.mark.parametrize("make, words", [
    (lambda tmp, data: tmp / "missing.npz", "no such file"),
    (lambda tmp, data: _trained_model(tmp, data), "this is a trained model, not a training checkpoint"),
    (lambda tmp, data: _truncated(tmp), "not a digitbench checkpoint (not a readable .npz zip"),
])
def test_cli_resume_bad_file_is_an_error(cli_data, tmp_path, capsys, make, words):
    path = make(tmp_path, cli_data)
    capsys.readouterr()
    code = main(["train", "--resume", str(path), "--data-dir", str(cli_data), "--out", str(tmp_path / "new.npz")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "new.npz").exists()  # never a silent fresh start


def _trained_model(tmp, data):
    assert main(["train", "--data-dir", str(data), "--out", str(tmp / "m.npz"), *CLI_RUN, "--epochs", "1"]) == 0
    return tmp / "m.npz"


def _truncated(tmp):
    path = tmp / "c.npz"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    return path


@pytest.mark.parametrize("tamper, words", [
    (dict(epoch="2"), "metadata epoch has the wrong type or range"),
    (dict(step=10**9), "epoch 1, step 1000000000 is outside its run"),
    (dict(rng_state={"bit_generator": "MT19937"}), "rng_state has the wrong type .*PCG64"),
    (dict(rng_state={"bit_generator": "PCG64", "state": "x"}), "rng_state has the wrong type .*PCG64"),
    (dict(history={}), "history has the wrong type"),
    (dict(n_train=1000), "1000 images in batches of 64 make 16"),
])
def test_tampered_checkpoint_is_refused(small, tmp_path, tamper, words):
    ck = _checkpoint(small)
    path = tmp_path / "c.npz"
    ck.save(path)
    members = dict(np.load(path))
    members["meta"] = np.array(json.dumps({**json.loads(str(members["meta"])), **tamper}))
    np.savez(path, **members)
    with pytest.raises(DigitbenchError, match=words):
        state, _ = TrainState.load(path)
        train(get_backend("numpy"), small, resume=state, **RUN)


def test_cli_resume_with_a_contradicting_option(cli_data, tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        _interrupt_at(m, get_backend("numpy"), 2)
        main(["train", "--data-dir", str(cli_data), "--out", str(tmp_path / "m.npz"), *CLI_RUN])
    capsys.readouterr()
    checkpoint = tmp_path / "m.checkpoint.npz"
    code = main(["train", "--resume", str(checkpoint), "--data-dir", str(cli_data), "--lr", "0.1"])
    err = capsys.readouterr().err
    assert code == 1 and f"--lr 0.1 contradicts the checkpoint {checkpoint}, made with 0.05" in err
    code = main(["train", "--resume", str(checkpoint), "--data-dir", str(cli_data), "--center"])
    err = capsys.readouterr().err
    assert code == 1 and f"--center contradicts the checkpoint {checkpoint}, made with False" in err


def test_default_checkpoint_path():
    assert str(default_checkpoint_path("runs/model.npz")) == os.path.join("runs", "model.checkpoint.npz")
    assert str(default_checkpoint_path("")) == "digitbench.checkpoint.npz"


RUNNER = ("import json, sys; import digitbench.data as d; d.CHECKSUMS['mnist'] = json.loads(sys.argv[1]); "
          "from digitbench.cli import main; sys.exit(main(sys.argv[2:]))")


@pytest.mark.parametrize("signum, status, words", [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_real_signal_to_a_training_process(small_dir, tmp_path, monkeypatch, signum, status, words):
    """A real Ctrl-C (SIGINT) or SIGTERM to `digitbench train` in another process, then resume here."""
    folder, sums = small_dir
    out = tmp_path / "m.npz"
    args = ["train", "--data-dir", str(folder), "--out", str(out), *CLI_RUN, "--epochs", "12"]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(sums), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the first epoch's line: training is under way
        assert line.startswith("epoch   1"), line + proc.stderr.read()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    checkpoint = tmp_path / "m.checkpoint.npz"
    assert proc.returncode == status, err
    assert err.startswith(f"digitbench train: {words} in epoch ") and err.count("\n") == 1, err
    assert "Traceback" not in err and checkpoint.exists() and not out.exists()
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    assert main(["train", "--resume", str(checkpoint), "--data-dir", str(folder)]) == 0
    whole = tmp_path / "whole.npz"
    assert main(["train", "--data-dir", str(folder), "--out", str(whole), *CLI_RUN, "--epochs", "12"]) == 0
    assert _same(load_model(out)[0], load_model(whole)[0])


def test_a_closed_stdout_stops_the_printing_not_the_work(small_dir, tmp_path):
    """`digitbench train ... | head -1`: the run finishes, saves the model, and exits 141."""
    folder, sums = small_dir
    out = tmp_path / "m.npz"
    args = ["train", "--data-dir", str(folder), "--out", str(out), *CLI_RUN, "--epochs", "4", "--json"]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(sums), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("epoch   1")
        proc.stdout.close()  # as `head -1` does after its line
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 141, err
    assert err == ("digitbench train: standard output was lost (the reading end of the pipe was closed); "
                   "the command still ran to the end\n")
    params, meta = load_model(out)
    assert len(meta["history"]) == 4
