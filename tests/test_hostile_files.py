"""The hostile run, part 5: output paths, the model file's own limits, checkpoints, numbers.

Output paths ending in ``/``, symbolic links and names near the file system's limit;
a checkpoint that names an output of its own choosing; the epoch limit against what a
model file can hold; text from a model file in a figure; classes taken from logits that
round to equal probabilities; EXIF orientation; checkpoint fields that contradict each
other; a mirror that trickles.
"""

import http.server
import json
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

import digitbench.data as data_mod
from digitbench import get_backend, init_params, load_model, save_model
from digitbench.errors import ModelFileError
from digitbench.evaluate import evaluate
from digitbench.model_io import load_checkpoint, save_checkpoint
from digitbench.params import Params
from digitbench.predict import preprocess_image
from digitbench.recipe import HISTORY_RECORD_CHARS, MAX_EPOCHS, Recipe
from digitbench.schema import MAX_META_CHARS
from hostile import COUNT, QUICK_TRAIN, Workspace, attempt, small_dataset


@pytest.fixture(scope="module")
def small_dir(mnist_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-mnist")
    return folder, small_dataset(mnist_data, folder)


@pytest.fixture
def ws(tmp_path, monkeypatch, small_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(data_mod.CHECKSUMS, "mnist", small_dir[1])
    workspace = Workspace(tmp_path)
    yield workspace


def train(capsys, small_dir, *argv, status=0, words=()):
    return attempt(capsys, ["train", *QUICK_TRAIN, "--data-dir", small_dir[0], *argv], status=status, words=words)


# --------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("out, words", [("keep.npz/", "names a folder, not a file"),
                                        ("runs/", "names a folder, not a file; name a file in it (e.g. runs/model.npz)"),
                                        ("adir/.", "names a folder"),
                                        ("x" * 256 + ".npz", "the file name is 260 bytes long; this file system allows 255")])
def test_out_naming_a_folder_or_too_long_is_refused_first(ws, capsys, small_dir, out, words):
    attempt(capsys, ["train", "--out", out, "--data-dir", "/nonexistent"], status=1, words=[words])
    ws.check_intact()


@pytest.mark.parametrize("name", ["m\nx.npz", "m\rx.npz", "m\x1b[31mx.npz"])
def test_control_characters_in_a_path_stay_on_one_line(ws, capsys, name):
    _, _, err = attempt(capsys, ["evaluate", "--model", name], status=1)
    assert err.count("\n") == 1 and repr(name)[1:-1] in err


def test_out_through_a_symlink_updates_its_target(ws, capsys, small_dir):
    (ws.root / "link.npz").symlink_to("adir/target.npz")
    ws.before = ws.snapshot()
    train(capsys, small_dir, "--out", "link.npz")
    assert (ws.root / "link.npz").is_symlink() and load_model(ws.root / "adir" / "target.npz").meta["history"]
    ws.check_intact(allowed_new=["adir/target.npz"])


def test_a_long_out_name_works_and_its_checkpoint_name_is_shortened(ws, capsys, small_dir):
    out = "m" * 247 + ".npz"  # 251 bytes: fits, but "<stem>.checkpoint.npz" would not
    train(capsys, small_dir, "--out", out)
    assert load_model(ws.root / out).meta["history"]
    ws.check_intact(allowed_new=[out])


def test_out_over_a_file_that_is_not_a_model_is_refused(ws, capsys, small_dir):
    (ws.root / "notes.txt").write_text("mine")
    ws.before = ws.snapshot()
    train(capsys, small_dir, "--out", "notes.txt", status=1,
          words=["--out notes.txt: exists and is not a digitbench model or checkpoint"])
    ws.check_intact()


def _interrupted_checkpoint(capsys, small_dir, folder, monkeypatch):
    """A real Ctrl-C checkpoint of a 2-epoch run, in ``folder``."""
    backend = get_backend("numpy")
    real = backend.train_batches

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(backend, "train_batches", stop)
    out = folder / "m.npz"
    attempt(capsys, ["train", *QUICK_TRAIN, "--epochs", "2", "--data-dir", small_dir[0], "--out", out], status=130)
    monkeypatch.setattr(backend, "train_batches", real)
    return folder / "m.checkpoint.npz"


def _tamper(path, **fields):
    members = dict(np.load(path))
    members["meta"] = np.array(json.dumps({**json.loads(str(members["meta"])), **fields}))
    np.savez(path, **members)


def test_a_checkpoint_cannot_choose_where_the_model_goes(ws, capsys, small_dir, monkeypatch):
    run_dir = ws.root / "adir"
    checkpoint = _interrupted_checkpoint(capsys, small_dir, run_dir, monkeypatch)
    victim = ws.root / "victim.npz"
    victim.write_bytes(b"someone else's file")
    _tamper(checkpoint, cli={"recipe": "seed", "dataset": "mnist", "out": str(victim), "backend": "numpy"})
    _, out, _ = attempt(capsys, ["train", "--resume", checkpoint, "--data-dir", small_dir[0], "--quiet"], status=0)
    assert f"the model will be saved as {run_dir / 'victim.npz'}" in out
    assert victim.read_bytes() == b"someone else's file" and load_model(run_dir / "victim.npz").meta["history"]
    # the name in the checkpoint's own folder is someone's file: refused before training
    checkpoint = _interrupted_checkpoint(capsys, small_dir, run_dir, monkeypatch)
    (run_dir / "notes.npz").write_bytes(b"not a model")
    _tamper(checkpoint, cli={"recipe": "seed", "dataset": "mnist", "out": "../elsewhere/notes.npz", "backend": "numpy"})
    attempt(capsys, ["train", "--resume", checkpoint, "--data-dir", small_dir[0]], status=1,
            words=["exists and is not a digitbench model or checkpoint"])
    assert (run_dir / "notes.npz").read_bytes() == b"not a model"


@pytest.mark.parametrize("fields, words", [
    (dict(epoch_start_clock=1000.0), "its epoch started at 1000.0 s of training, after its"),
    (dict(reached_at=1e300), "it records reaching a target it does not have"),
])
def test_contradicting_checkpoint_fields_are_refused(ws, capsys, small_dir, monkeypatch, fields, words):
    checkpoint = _interrupted_checkpoint(capsys, small_dir, ws.root / "adir", monkeypatch)
    _tamper(checkpoint, **fields)
    with pytest.raises(ModelFileError, match=words):
        load_checkpoint(checkpoint)


# --------------------------------------------------------------------------- the model file's limits


def _record(epoch):
    """The longest history record there is: every float with 17 significant digits and an exponent."""
    big = 1.2345678901234567e-300
    return {"epoch": epoch, "loss": big, "train_accuracy": big, "test_accuracy": big, "seconds": 1.2345678901234567e300,
            "lr": big}


def test_the_longest_record_fits_its_budget():
    assert len(json.dumps([_record(MAX_EPOCHS)] * 2)) - 2 <= 2 * HISTORY_RECORD_CHARS


def test_a_model_and_a_checkpoint_at_the_epoch_limit_load(tmp_path):
    COUNT["attempts"] += 1
    history = [_record(e) for e in range(1, MAX_EPOCHS + 1)]
    config = Recipe(epochs=MAX_EPOCHS).as_dict()
    path = save_model(tmp_path / "m.npz", init_params(), history=history, config=config, backend="numpy")
    assert len(load_model(path).meta["history"]) == MAX_EPOCHS
    state = dict(epoch=MAX_EPOCHS, step=0, rng_state=np.random.default_rng().bit_generator.state, train_clock=1.0,
                 eval_clock=0.0, epoch_start_clock=1.0, reached_at=None, test_acc=None, history=history[:-1],
                 config=config, n_train=64, steps_per_epoch=1, backend="numpy",
                 cli={"recipe": "seed", "dataset": "mnist", "out": "x" * 1000, "backend": "numpy"})
    path = save_checkpoint(tmp_path / "c.npz", init_params(), init_params(), np.zeros(0), **state)
    assert len(load_checkpoint(path)[3]["history"]) == MAX_EPOCHS - 1


def test_metadata_a_loader_would_refuse_is_not_saved(tmp_path):
    with pytest.raises(ModelFileError, match="not saved: its metadata is .* characters, more than"):
        save_model(tmp_path / "m.npz", init_params(), note="x" * MAX_META_CHARS)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- numbers and pictures


@pytest.mark.parametrize("backend_name", ["$x^$", "\udcff\udcfe", "a\nb\x00c" + "$" * 200])
def test_hostile_text_in_a_model_is_drawn_as_text(ws, capsys, small_dir, backend_name):
    record = {"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "test_accuracy": 0.9, "seconds": 1.0, "lr": 0.01}
    save_model(ws.root / "odd.npz", init_params(), backend=backend_name, history=[record], dataset="mnist", seed=0)
    attempt(capsys, ["plot", "--model", "odd.npz", "--backend", "numpy", "--data-dir", small_dir[0],
                     "--out-dir", "pics"], status=0)
    assert (ws.root / "pics" / "training-curves.png").stat().st_size > 0


def _flattened(params, scale):
    """``params`` with the last layer scaled: logits close enough that float32 softmax ties."""
    return Params(*params[:4], params.W3 * np.float32(scale), params.b3 * np.float32(scale))


@pytest.mark.parametrize("scale", [1e-8, 1e-9])
def test_classes_come_from_the_logits(small_dir, mnist_data, tmp_path, scale):
    COUNT["attempts"] += 1
    rng = np.random.default_rng(0)
    params = _flattened(Params(*(a + rng.normal(0, 0.05, a.shape).astype(a.dtype) for a in init_params())), scale)
    images, labels = mnist_data[2][:200], mnist_data[3][:200]
    expected = get_backend("numpy").logits(params, images).argmax(axis=1)
    assert len(np.unique(expected)) > 1  # the logits still tell the classes apart
    for name in ("numpy", "numba"):
        result = evaluate(get_backend(name), params, images, labels)
        assert (result["predictions"] == expected).all(), name
    assert (get_backend("naive").predict(params, images[:5]) == expected[:5]).all()
    model = load_model(save_model(tmp_path / "m.npz", params))
    assert (model.predict(images[:20]) == expected[:20]).all()


def test_evaluate_json_reports_the_epochs_run(ws, capsys, small_dir):
    record = {"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "test_accuracy": 0.9, "seconds": 1.0, "lr": 0.01}
    save_model(ws.root / "m.npz", init_params(), history=[record], config=Recipe(epochs=3).as_dict(), dataset="mnist")
    _, out, _ = attempt(capsys, ["evaluate", "--model", "m.npz", "--backend", "numpy", "--data-dir", small_dir[0],
                                 "--json"], status=0)
    assert json.loads(out.splitlines()[-1])["epochs_run"] == 1


def test_exif_orientation_is_applied(tmp_path, mnist_data):
    COUNT["attempts"] += 1
    digit = Image.fromarray(mnist_data[2][0].reshape(28, 28)).resize((112, 112))
    digit.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: turn 90 degrees clockwise to view, as phones store portrait shots
    digit.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png", exif=exif)
    assert (preprocess_image(tmp_path / "sideways.png") == preprocess_image(tmp_path / "upright.png")).all()


# --------------------------------------------------------------------------- a mirror that trickles


class _Trickle(http.server.BaseHTTPRequestHandler):
    """One byte every 0.2 s: never silent long enough for the per-read timeout."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_a_trickling_mirror_ends_at_the_overall_deadline(tmp_path, capsys, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DIGITBENCH_MIRRORS", f"http://127.0.0.1:{server.server_address[1]}/")
        monkeypatch.setattr("digitbench.download.TOTAL_SECONDS", 1.0)
        t0 = time.monotonic()
        attempt(capsys, ["download", "--data-dir", tmp_path / "d", "--quiet"], status=1, words=["transfer too slow"])
        assert time.monotonic() - t0 < 30
    finally:
        server.shutdown()
    assert not any(p.name.startswith(".") for p in (tmp_path / "d").iterdir())
