"""The hostile run, part 4: standard streams, signals during the final save, the environment.

Real processes: standard output closed (``>&-``) or full (``/dev/full``) never stops a
command and never costs the trained model; SIGTERM or a full disk while the finished
model is written keeps the weights in a file that one line names; a process killed
outright leaves a temporary file that the next write removes; bad values of numba's and
matplotlib's environment variables are one line or a working fallback.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import digitbench.files as files
from digitbench import init_params, load_model, save_model
from digitbench.cli import main
from digitbench.commands import options
from hostile import COUNT, QUICK_TRAIN, RUNNER, small_dataset


@pytest.fixture(scope="module")
def small_dir(mnist_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-mnist")
    return folder, small_dataset(mnist_data, folder)


def run(small_dir, argv, env=None, **kwargs):
    """``digitbench *argv`` in its own process, on the small data set; the tally counts it."""
    COUNT["attempts"] += 1
    folder, sums = small_dir
    kwargs.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(sums), *argv, "--data-dir", str(folder)],
                          stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, timeout=300,
                          **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _close_stdout():
    os.close(1)


@pytest.mark.parametrize("how, reason", [("closed", "it was closed"), ("full", "No space left on device")])
def test_train_with_a_lost_stdout_finishes_and_saves(small_dir, tmp_path, how, reason):
    out = tmp_path / "m.npz"
    argv = ["train", *QUICK_TRAIN, "--out", str(out), "--json"]
    if how == "closed":
        proc = run(small_dir, argv, stdout=None, preexec_fn=_close_stdout)
    else:
        with open("/dev/full", "w") as full:
            proc = run(small_dir, argv, stdout=full)
    assert proc.returncode == 1
    assert proc.stderr == f"digitbench train: standard output was lost ({reason}); the command still ran to the end\n"
    assert len(load_model(out).meta["history"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_evaluate_with_stdout_closed_is_one_line(small_dir, tmp_path):
    model = save_model(tmp_path / "m.npz", init_params(), dataset="mnist", seed=0)
    proc = run(small_dir, ["evaluate", "--model", str(model), "--backend", "numpy"], stdout=None,
               preexec_fn=_close_stdout)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "standard output was lost" in proc.stderr


#: Slows the first np.savez (the final model's) down, so that a signal arrives mid-save.
SLOW_SAVE = ("import time, numpy as np; real = np.savez; calls = []\n"
             "def slow(f, **a):\n"
             "    calls.append(1); real(f, **a)\n"
             "    if len(calls) == 1: time.sleep(60)\n"
             "np.savez = slow\n")


@pytest.mark.parametrize("sig, status, words", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                 (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_the_final_save_keeps_the_weights(small_dir, tmp_path, sig, status, words):
    COUNT["attempts"] += 1
    folder, sums = small_dir
    out = tmp_path / "out" / "m.npz"
    out.parent.mkdir()
    rescue_dir = tmp_path / "tmp"
    rescue_dir.mkdir()
    argv = ["train", *QUICK_TRAIN, "--out", str(out), "--data-dir", str(folder)]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE + RUNNER, json.dumps(sums), *argv],
                            env={**os.environ, "TMPDIR": str(rescue_dir)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.endswith(".tmp") for p in out.parent.iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None, "the final save never started"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status and "Traceback" not in err, err
    rescued = [p for p in rescue_dir.iterdir() if p.name.startswith("digitbench-rescued-")]
    assert len(rescued) == 1 and list(out.parent.iterdir()) == []
    assert err == (f"digitbench train: could not save {out} ({words}); the trained model was saved instead as "
                   f"{rescued[0]}; move it where it belongs\n")
    assert len(load_model(rescued[0]).meta["history"]) == 1


def test_a_full_disk_during_the_final_save_keeps_the_weights(small_dir, tmp_path, mnist_data, monkeypatch, capsys):
    import errno

    import numpy as np

    import digitbench.data as data_mod

    folder, sums = small_dir
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", sums)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    out = tmp_path / "m.npz"
    keep = save_model(out, init_params(seed=3))
    before = keep.read_bytes()
    real, calls = np.savez, []

    def full(f, **arrays):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, **arrays)

    monkeypatch.setattr(np, "savez", full)
    COUNT["attempts"] += 1
    assert main(["train", *QUICK_TRAIN, "--out", str(out), "--data-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    rescued = next(tmp_path.glob("digitbench-rescued-*"))
    assert err == (f"digitbench train: could not save {out} ({out}: cannot write (No space left on device)); the "
                   f"trained model was saved instead as {rescued}; move it where it belongs\n")
    assert out.read_bytes() == before and len(load_model(rescued).meta["history"]) == 1


def test_a_sigkill_leftover_is_removed_by_the_next_write(tmp_path):
    COUNT["attempts"] += 1
    script = ("import time, numpy as np\nfrom digitbench import init_params, save_model\n"
              "real = np.savez\nnp.savez = lambda f, **a: (real(f, **a), time.sleep(60))\n"
              f"save_model({str(tmp_path / 'm.npz')!r}, init_params())\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".digitbench-*.tmp")):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    left = list(tmp_path.glob(".digitbench-*.tmp"))
    assert len(left) == 1 and files.TEMPORARY.match(left[0].name)
    mine = tmp_path / f".digitbench-{os.getpid()}-inuse.tmp"  # a live process's: kept
    mine.write_bytes(b"")
    save_model(tmp_path / "other.npz", init_params())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "other.npz"])


@pytest.mark.parametrize("env, words", [
    ({"NUMBA_NUM_THREADS": "0"}, "environment variable NUMBA_NUM_THREADS='0': must be a whole number from 1"),
    ({"NUMBA_NUM_THREADS": "abc"}, "environment variable NUMBA_NUM_THREADS='abc'"),
    ({"NUMBA_NUM_THREADS": "100000"}, "environment variable NUMBA_NUM_THREADS='100000'"),
    ({"NUMBA_THREADING_LAYER": "nonsense"}, "NUMBA_THREADING_LAYER='nonsense': numba has no such threading layer"),
])
@pytest.mark.parametrize("command", [["plot", "--model", "none.npz"], ["evaluate", "--model", "none.npz"]])
def test_bad_numba_variables_are_one_line(small_dir, tmp_path, env, words, command):
    proc = run(small_dir, command, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and words in proc.stderr
    assert proc.stderr.startswith(f"digitbench {command[0]}: error: environment variable")


def test_a_threading_layer_that_cannot_load_is_one_line(small_dir, tmp_path):
    if options._loads("tbbpool"):
        pytest.skip("TBB is installed here")
    proc = run(small_dir, ["evaluate", "--model", "none.npz"], env={"NUMBA_THREADING_LAYER": "tbb"})
    assert proc.returncode == 1 and "NUMBA_THREADING_LAYER='tbb': this installation cannot load it" in proc.stderr


def test_an_unknown_mplbackend_still_draws(small_dir, tmp_path):
    model = save_model(tmp_path / "m.npz", init_params(), dataset="mnist", seed=0)
    proc = run(small_dir, ["plot", "--model", str(model), "--backend", "numpy", "--out-dir", str(tmp_path / "p")],
               env={"MPLBACKEND": "nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / "confusion-matrix.png").stat().st_size > 0


def test_no_writable_numba_cache_falls_back_to_a_temporary_folder(monkeypatch):
    monkeypatch.setattr(options, "_writable", lambda folder: False)
    environ = {}
    options.check_environment(environ)
    assert environ["NUMBA_CACHE_DIR"].startswith(os.path.join(options.tempfile.gettempdir(), "digitbench-numba"))
    environ = {"NUMBA_CACHE_DIR": "/mine"}
    options.check_environment(environ)
    assert environ == {"NUMBA_CACHE_DIR": "/mine"}


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGXCPU])
def test_a_hangup_or_cpu_limit_during_training_saves_a_checkpoint(small_dir, tmp_path, sig):
    """A closed terminal (SIGHUP) or a CPU-time limit (SIGXCPU) stops a run as SIGTERM does."""
    COUNT["attempts"] += 1
    folder, sums = small_dir
    out = tmp_path / "m.npz"
    argv = ["train", *QUICK_TRAIN, "--epochs", "30", "--out", str(out), "--data-dir", str(folder)]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(sums), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("epoch   1")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig and f"terminated ({sig.name}) in epoch" in err and "Traceback" not in err
    assert err.count("\n") == 1 and (tmp_path / "m.checkpoint.npz").is_file()
