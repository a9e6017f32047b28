"""The hostile run, part 2: data folders, mirrors and model files that lie.

Issue 12 items 1 (another data set's files are named, never deleted), 3 (raw files
checked against their known sizes), 5 (non-finite outputs refused, JSON strict), 6
(one-line messages, no warnings), 7 (``plot --dataset``), 2 (special files written
through), and issue 9 item 3 (offline errors show the way out).
"""

import http.server
import io
import shutil
import socket
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitbench import init_params, save_model
from digitbench import download as dl
from hostile import Workspace, attempt

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def fashion_copy(tmp_path_factory):
    """A copy of Debian's Fashion-MNIST files (a copy: the hostile commands point at it)."""
    if not FASHION.is_dir():
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    return Path(shutil.copytree(FASHION, tmp_path_factory.mktemp("fashion") / "f"))


@pytest.fixture
def ws(tmp_path, monkeypatch, data_dir, fashion_copy):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITBENCH_DATA", str(data_dir))
    monkeypatch.setenv(dl.MIRRORS_ENV, f"http://127.0.0.1:{_closed_port()}/")
    workspace = Workspace(tmp_path)
    workspace.fashion = Path(shutil.copytree(fashion_copy, tmp_path / "fashion"))
    params = init_params()
    save_model(tmp_path / "fashion.npz", params, dataset="fashion-mnist", seed=0)
    save_model(tmp_path / "huge.npz", params._replace(W1=np.sign(params.W1) * np.float32(3e38)), dataset="mnist")
    _write_bad_header_model(tmp_path / "keep.npz", tmp_path / "badheader.npz")
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (sparse / name).symlink_to(data_dir / name)
    with open(sparse / "train-images-idx3-ubyte", "wb") as f:
        f.write(b"\0\0\x08\x03" + (20 * 10**9 // 784).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        f.truncate(20 * 10**9)  # sparse: 20 GB declared, nothing on disk
    short = tmp_path / "short"
    short.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (short / name).symlink_to(data_dir / name)
    (short / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + (60_000).to_bytes(4, "big") + bytes(59_999))
    workspace.before = workspace.snapshot()
    yield workspace
    workspace.check_intact(allowed_new=getattr(workspace, "allowed_new", ()))


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_bad_header_model(good, bad):
    """A model whose W1.npy declares a 20,000-byte header (NumPy refuses over 10,000)."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "W1.npy":
                header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }"
                header = header.ljust(20_000 - 11) + b"\n"
                data = b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header + data[128:]
            dst.writestr(info.filename, data)


class _Loop(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", self.path)  # to itself, forever
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_loop():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Loop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


FAILURES = [
    (["train", "--data-dir", "fashion", "--out", ""], "fashion/train-images-idx3-ubyte.gz: this is Fashion-MNIST's "
     "train-images file, not MNIST's; choose --dataset fashion-mnist"),
    (["download", "--data-dir", "fashion", "--quiet"], "this is Fashion-MNIST's train-images file, not MNIST's"),
    (["evaluate", "--model", "keep.npz", "--dataset", "fashion-mnist"], "this is MNIST's train-images file, "
     "not Fashion-MNIST's; choose --dataset mnist"),
    (["evaluate", "--model", "fashion.npz"], "(the model fashion.npz was trained on fashion-mnist"),
    (["plot", "--model", "fashion.npz", "--out-dir", "adir"], "was trained on fashion-mnist"),
    (["evaluate", "--model", "huge.npz"], "huge.npz: the model's outputs are not finite (NaN or infinite) on "),
    (["evaluate", "--model", "huge.npz", "--json"], "outputs are not finite"),
    (["plot", "--model", "huge.npz", "--out-dir", "adir"], "outputs are not finite"),
    (["evaluate", "--model", "badheader.npz"], "badheader.npz: member W1 has a bad .npy header (Header info length"),
    (["evaluate", "--model", "fifo"], "fifo: is a FIFO (named pipe), not a digitbench model file"),
    (["evaluate", "--model", "adir"], "adir: is a folder, not a digitbench model file"),
    (["train", "--data-dir", "sparse", "--out", ""], "20,000,000,000 bytes, larger than any data file read here"),
    (["train", "--data-dir", "short", "--out", ""], "60,007 bytes, but MNIST's train-labels file has 60,008"),
    (["evaluate", "--model", "keep.npz", "--data-dir", "sparse"], "larger than any data file"),
]


@pytest.mark.parametrize("argv, words", FAILURES, ids=[" ".join(a) for a, _ in FAILURES])
def test_refused_in_one_line(ws, capsys, argv, words):
    _, _, err = attempt(capsys, argv, status=1, words=[words])
    assert err.count("\n") == 1, err


def test_data_variable_named_when_it_is_the_cause(ws, capsys, monkeypatch):
    monkeypatch.setenv("DIGITBENCH_DATA", "/nonexistent")
    attempt(capsys, ["train", "--out", ""], words=["DIGITBENCH_DATA=/nonexistent: no such data folder"])
    monkeypatch.setenv("DIGITBENCH_DATA", str(ws.root / "adir"))
    attempt(capsys, ["evaluate", "--model", "keep.npz"], words=[f"DIGITBENCH_DATA={ws.root / 'adir'}: missing"])


@pytest.mark.parametrize("dataset, hint", [("mnist", "DIGITBENCH_DATA=FOLDER"),
                                           ("fashion-mnist", "apt install dataset-fashion-mnist")])
def test_offline_download_lists_mirrors_then_the_way_out(ws, capsys, monkeypatch, dataset, hint):
    port = _closed_port()
    monkeypatch.setenv(dl.MIRRORS_ENV, f"http://127.0.0.1:{port}/a/ http://127.0.0.1:{port}/b/")
    ws.allowed_new = ("new",)  # the folder it creates, to stay empty
    _, _, err = attempt(capsys, ["download", "--data-dir", "new", "--dataset", dataset, "--quiet"], words=[hint])
    lines = err.splitlines()
    assert len(lines) == 4 and lines[1].startswith(f"  http://127.0.0.1:{port}/a/train-images-idx3-ubyte.gz: ")
    assert "Connection refused" in lines[1] and "--data-dir FOLDER" in lines[3]
    assert list((ws.root / "new").iterdir()) == []


def test_redirect_loop_is_one_line_per_mirror(ws, capsys, monkeypatch, redirect_loop):
    monkeypatch.setenv(dl.MIRRORS_ENV, f"{redirect_loop}a/ {redirect_loop}b/")
    monkeypatch.setattr(dl, "TIMEOUT_SECONDS", 5)
    ws.allowed_new = ("new",)
    _, _, err = attempt(capsys, ["download", "--data-dir", "new", "--quiet"], words=["HTTP 302: redirected in a loop"])
    assert len(err.splitlines()) == 4, err


def test_overflow_in_evaluate_warns_nothing(ws, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attempt(capsys, ["evaluate", "--model", "huge.npz", "--backend", "numpy"], words=["not finite"])
    assert [str(w.message) for w in caught] == []


SUCCESSES = [
    (["download", "--data-dir", "fashion", "--dataset", "fashion-mnist", "--quiet"], (), "present and verified"),
    (["evaluate", "--model", "keep.npz", "--json"], (), '"test_accuracy"'),
    (["plot", "--model", "keep.npz", "--dataset", "fashion-mnist", "--data-dir", "fashion", "--out-dir", "adir"],
     ("adir/",), "adir/confusion-matrix.png"),
    (["train", "--backend", "numpy", "--epochs", "1", "--out", "{chardev}", "--quiet"], (), "saved"),
    (["train", "--backend", "numpy", "--epochs", "1", "--out", "m.npz", "--plot", "c.png", "--json", "--quiet"],
     ("m.npz", "c.png"), '"seconds_to_target": null'),
    (["bench", "--quick", "--synthetic", "--backends", "numpy", "--repeats", "1", "--plot", "{chardev}",
      "--out-json", "{chardev}.json"], ("null.json",), "wrote"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, new, words", SUCCESSES, ids=[" ".join(a[:3]) for a, _, _ in SUCCESSES])
def test_succeeds_and_replaces_nothing_special(ws, capsys, argv, new, words):
    if any("{chardev}" in a for a in argv):
        if ws.chardev is None:
            pytest.skip("mknod needs root")
        argv = [a.replace("{chardev}", str(ws.chardev)) for a in argv]
    ws.allowed_new = new
    attempt(capsys, argv, status=0, words=[words])
