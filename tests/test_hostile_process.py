"""The hostile run, part 3: real processes (signals, ``python -OO``, full disks, encodings).

Issue 12 items 2 and 11: SIGTERM or Ctrl-C during a download or a save leaves no
temporary file; ``-OO`` (docstrings stripped) runs every command; ``> /dev/full`` and
a strict UTF-8 standard output given a non-UTF-8 file name end in one line, not a
traceback.
"""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from digitbench import init_params, save_model
from digitbench.commands import COMMANDS
from hostile import COUNT

COMMAND_NAMES = [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS]


def run(args, env=None, **kwargs):
    """``python *args`` with DIGITBENCH_DATA kept; the hostile tally counts it."""
    COUNT["attempts"] += 1
    kwargs.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run([sys.executable, *args], stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                          timeout=300, **kwargs)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


@pytest.mark.parametrize("command", [None, *COMMAND_NAMES])
def test_dash_OO_help(command):
    proc = run(["-OO", "-m", "digitbench", *([command] if command else []), "--help"])
    assert proc.returncode == 0 and b"usage: digitbench" in proc.stdout


@pytest.fixture
def model(tmp_path):
    return save_model(tmp_path / "m.npz", init_params(), dataset="mnist", seed=0)


def test_dash_OO_evaluate(data_dir, model):
    proc = run(["-OO", "-m", "digitbench", "evaluate", "--model", str(model), "--data-dir", str(data_dir), "--json"])
    assert proc.returncode == 0 and b'"test_accuracy"' in proc.stdout


@pytest.mark.parametrize("argv", [["evaluate", "--model", "{model}", "--data-dir", "{data}"],
                                  ["gradcheck", "--backend", "numpy"]])
def test_full_disk_on_stdout_is_one_line(data_dir, model, argv):
    argv = [a.format(model=model, data=data_dir) for a in argv]
    with open("/dev/full", "w") as full:
        proc = run(["-m", "digitbench", *argv], stdout=full)
    assert proc.returncode == 1
    assert proc.stderr.decode() == f"digitbench {argv[0]}: standard output was lost (No space left on device); " \
                                   "the command still ran to the end\n"


def test_non_utf8_names_on_a_strict_utf8_stdout(data_dir, model, tmp_path, mnist_data):
    odd = os.fsdecode(bytes(tmp_path) + b"/\xff\xfe.npz")
    os.rename(model, odd)
    env = {"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    proc = run(["-m", "digitbench", "evaluate", "--model", odd, "--data-dir", str(data_dir)], env=env)
    assert proc.returncode == 0 and b"\\udcff\\udcfe.npz: test accuracy" in proc.stdout
    image = os.fsdecode(bytes(tmp_path) + b"/\xe9t\xe9.png")
    Image.fromarray(mnist_data.test_images[0].reshape(28, 28)).save(image)
    proc = run(["-m", "digitbench", "predict", "--model", odd, image], env=env)
    assert proc.returncode == 0 and b"\\udce9t\\udce9.png" in proc.stdout


class _Stall(http.server.BaseHTTPRequestHandler):
    """Sends the headers and a few bytes of a .gz, then nothing for a minute."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 5000)
        self.wfile.flush()
        time.sleep(60)

    def log_message(self, *args):
        pass


@pytest.fixture
def stalling_mirror():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stall)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _wait_for_temporary(folder, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and any(p.name.endswith(".tmp") for p in folder.iterdir()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no temporary file appeared in {folder}")


@pytest.mark.parametrize("sig, status, words", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                 (signal.SIGINT, 130, "interrupted")])
def test_signal_during_a_download_leaves_nothing(tmp_path, stalling_mirror, sig, status, words):
    COUNT["attempts"] += 1
    folder = tmp_path / "d"
    env = {**os.environ, "DIGITBENCH_MIRRORS": stalling_mirror}
    proc = subprocess.Popen([sys.executable, "-m", "digitbench", "download", "--data-dir", str(folder), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_temporary(folder, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status and words in err.decode() and b"Traceback" not in err, err
    assert list(folder.iterdir()) == []


def test_sigterm_during_a_save_leaves_the_old_model(tmp_path):
    """A save made slow on purpose (np.savez then a pause) is killed before its rename."""
    COUNT["attempts"] += 1
    path = save_model(tmp_path / "m.npz", init_params(seed=1))
    before = path.read_bytes()
    script = ("import time, numpy as np\n"
              "from digitbench import init_params, save_model\n"
              "from digitbench.errors import Terminated\n"
              "real = np.savez\n"
              "np.savez = lambda f, **a: (real(f, **a), time.sleep(60))\n"
              "try:\n"
              f"    save_model({str(path)!r}, init_params(seed=2))\n"
              "except Terminated:\n"
              "    raise SystemExit(143)\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait_for_temporary(tmp_path, proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"] and path.read_bytes() == before
