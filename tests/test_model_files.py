"""Model files: hostile or broken ones are refused with one line; saving is atomic.

Every bad file is built here from a good one. Loading must never unpickle: the object
array case holds a pickle that would create a marker file if it were ever loaded.
"""

import io
import json
import os
import pathlib
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from digitbench import init_params, load_model, save_model
from digitbench.cli import main
from digitbench.errors import UsageError, ModelFileError
from digitbench.model_io import PARAM_NAMES, load_checkpoint, save_checkpoint
from digitbench.recipe import Recipe
from digitbench.train import TrainState


def _meta(**changes):
    meta = {"format": "digitbench-model", "format_version": 1, "layer_sizes": [784, 128, 64, 10],
            "dtype": "float32"}
    meta.update(changes)
    return np.array(json.dumps(meta))


def _arrays(dtype=np.float32):
    return {name: a for name, a in zip(PARAM_NAMES, init_params(0, dtype))}


def _npz(path, arrays, meta=None, compressed=False):
    members = dict(arrays)
    if meta is not False:
        members["meta"] = _meta() if meta is None else meta
    (np.savez_compressed if compressed else np.savez)(path, **members)
    return path


class Touch:
    """Unpickling this creates a file: proof that nothing was unpickled when it is absent."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _replace_member(path, name, data):
    """Rewrite the zip at ``path`` with member ``name`` holding ``data`` (bytes)."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return path


def _build(kind, tmp_path):
    """A bad model file of the given kind; returns (path, words the message must hold)."""
    p = tmp_path / f"{kind.replace(' ', '_')}.npz"
    a = _arrays()
    if kind == "object array":
        obj = np.empty(2, dtype=object)
        obj[:] = [Touch(tmp_path / "UNPICKLED"), 1]
        return _npz(p, {**a, "W1": obj}), "object array; loading it would unpickle, which is refused"
    if kind == "pickle file":
        p.write_bytes(pickle.dumps({"W1": Touch(tmp_path / "UNPICKLED")}))
        return p, "not a readable .npz zip"
    if kind == "pickle member":
        _npz(p, a)
        return _replace_member(p, "W1.npy", pickle.dumps(Touch(tmp_path / "UNPICKLED"))), "W1 is not a NumPy .npy"
    if kind == "missing key":
        return _npz(p, {k: v for k, v in a.items() if k != "b3"}), "missing b3"
    if kind == "missing meta":
        return _npz(p, a, meta=False), "missing meta"
    if kind == "extra key":
        return _npz(p, {**a, "payload": np.zeros(3)}), "unexpected payload.npy"
    if kind == "wrong shape":
        return _npz(p, {**a, "W2": np.zeros((64, 128), np.float32)}), "W2 has shape (64, 128), expected (128, 64)"
    if kind == "integer dtype":
        return _npz(p, {**a, "b1": np.zeros(128, np.int32)}), "b1 has dtype int32, expected float32 or float64"
    if kind == "mixed dtypes":
        return _npz(p, {**a, "W3": a["W3"].astype(np.float64)}), "W3 has dtype float64 but the file says float32"
    if kind == "NaN weight":
        w = a["W2"].copy()
        w[3, 4] = np.nan
        return _npz(p, {**a, "W2": w}), "W2 holds NaN or infinite values"
    if kind == "infinite weight":
        b = a["b3"].copy()
        b[0] = -np.inf
        return _npz(p, {**a, "b3": b}), "b3 holds NaN or infinite values"
    if kind == "unknown format version":
        return _npz(p, a, meta=_meta(format_version=2)), "format version 2 is not supported"
    if kind == "not a digitbench model":
        return _npz(p, a, meta=_meta(format="something-else")), "not a digitbench model"
    if kind == "meta not JSON":
        return _npz(p, a, meta=np.array("{not json")), "metadata is not valid JSON"
    if kind == "meta deeply nested":
        return _npz(p, a, meta=np.array("[" * 100_000 + "]" * 100_000)), "metadata is not valid JSON"
    if kind == "meta a JSON list":
        return _npz(p, a, meta=np.array("[1, 2]")), "not a digitbench model (metadata lacks format"
    if kind == "meta not a string":
        return _npz(p, a, meta=np.zeros(3)), "metadata is not a JSON string"
    if kind == "other layer sizes":
        return _npz(p, a, meta=_meta(layer_sizes=[784, 256, 10])), "layer sizes [784, 256, 10] differ"
    if kind == "truncated zip":
        _npz(p, a)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p, "not a readable .npz zip"
    if kind == "truncated member":
        _npz(p, a)
        buf = io.BytesIO()
        np.save(buf, a["W1"])
        return _replace_member(p, "W1.npy", buf.getvalue()[:-100]), "W1 is truncated"
    if kind == "member longer than its header":
        _npz(p, a)
        buf = io.BytesIO()
        np.save(buf, a["b1"])
        return _replace_member(p, "b1.npy", buf.getvalue() + b"\0" * 8), "b1 is longer than its header declares"
    if kind == "oversized member":
        return _npz(p, {**a, "W1": np.zeros((2048, 1024), np.float32)}), "more than 4194304"
    if kind == "header claims a huge array":
        _npz(p, a)
        raw = io.BytesIO()  # a valid .npy header for 10**10 floats, followed by 16 bytes
        np.lib.format.write_array_header_1_0(raw, {"descr": "<f4", "fortran_order": False, "shape": (10**10,)})
        return _replace_member(p, "W1.npy", raw.getvalue() + b"\0" * 16), "declares shape (10000000000,)"
    if kind == "compressed bomb":
        return _npz(p, {**a, "W1": np.zeros((8192, 8192), np.float32)}, compressed=True), "declares 268435584 bytes"
    if kind == "duplicate member":
        _npz(p, a)
        with zipfile.ZipFile(p, "a") as zf, pytest.warns(UserWarning):
            zf.writestr("W1.npy", b"again")
        return p, "a member name appears twice"
    if kind == "empty file":
        p.write_bytes(b"")
        return p, "not a readable .npz zip"
    if kind == "checkpoint instead of model":
        save_checkpoint(p, init_params(), init_params(), np.zeros(2), epoch=1)
        return p, "this is a training checkpoint, not a model; finish the run with `digitbench train --resume"
    if kind == "no such file":
        return tmp_path / "nope.npz", "no such file"
    if kind == "a folder":
        (tmp_path / "folder.npz").mkdir()
        return tmp_path / "folder.npz", "is a folder, not a digitbench model file"
    if kind == "a FIFO":  # described as what it is, not as "no such file" (and never read: it would block)
        os.mkfifo(tmp_path / "fifo.npz")
        return tmp_path / "fifo.npz", "is a FIFO (named pipe), not a digitbench model file"
    raise ValueError(kind)


KINDS = ["object array", "pickle file", "pickle member", "missing key", "missing meta", "extra key", "wrong shape",
         "integer dtype", "mixed dtypes", "NaN weight", "infinite weight", "unknown format version",
         "not a digitbench model", "meta not JSON", "meta deeply nested", "meta a JSON list", "meta not a string", "other layer sizes",
         "truncated zip", "truncated member", "member longer than its header", "oversized member",
         "header claims a huge array", "compressed bomb", "duplicate member", "empty file",
         "checkpoint instead of model", "no such file", "a folder", "a FIFO"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_model_refused(tmp_path, kind):
    path, words = _build(kind, tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message
    assert not (tmp_path / "UNPICKLED").exists(), "something was unpickled"
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes while refusing"  # nothing huge was allocated


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("kind", ["object array", "truncated zip", "NaN weight", "unknown format version"])
def test_cli_bad_model_one_line(tmp_path, capsys, command, kind):
    path, words = _build(kind, tmp_path)
    argv = [command, "--model", str(path)] + (["some.png"] if command == "predict" else ["--data-dir", "none"])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"digitbench {command}: error: {path}: ")
    assert captured.err.count("\n") == 1 and words in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "UNPICKLED").exists()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_exact(tmp_path, dtype):
    params = init_params(3, dtype)
    params = params._replace(b2=np.linspace(-1, 1, 64).astype(dtype))  # non-zero biases too
    history = [{"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "test_accuracy": 0.8, "seconds": 1.5, "lr": 0.01}]
    save_model(tmp_path / "m.npz", params, seed=3, history=history)
    loaded, meta = load_model(tmp_path / "m.npz")
    for name, a, b in zip(PARAM_NAMES, params, loaded):
        assert b.dtype == dtype and b.flags.c_contiguous and b.flags.writeable, name
        np.testing.assert_array_equal(a, b, err_msg=name)  # bit-exact: .npy stores the raw bytes
    assert meta["seed"] == 3 and meta["history"] == history and meta["dtype"] == np.dtype(dtype).name


def test_foreign_but_valid_layouts_load(tmp_path):
    """Fortran order and big-endian floats are legitimate .npy: loaded, values intact."""
    a = _arrays()
    path = _npz(tmp_path / "m.npz", {**a, "W1": np.asfortranarray(a["W1"]), "W2": a["W2"].astype(">f4")})
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.W1, a["W1"])
    np.testing.assert_array_equal(loaded.W2, a["W2"])
    assert loaded.W2.dtype == np.float32 and loaded.W2.dtype.isnative


def test_save_crash_keeps_previous_model(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.npz", init_params(1))
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_model(path, init_params(2))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind


def test_save_interrupted_keeps_previous_model(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.npz", init_params(1))
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", lambda f, **arrays: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_model(path, init_params(2))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_save_refuses_non_finite_and_missing_folder(tmp_path):
    bad = init_params()._replace(b1=np.full(128, np.nan, np.float32))
    with pytest.raises(ModelFileError, match="not saved: b1 holds NaN"):
        save_model(tmp_path / "m.npz", bad)
    with pytest.raises(UsageError, match="folder .*no does not exist"):  # digitbench.files' check
        save_model(tmp_path / "no" / "m.npz", init_params())
    assert os.listdir(tmp_path) == []


def test_saved_model_is_readable_by_others(tmp_path):
    path = save_model(tmp_path / "m.npz", init_params())
    assert path.stat().st_mode & 0o044 == 0o044  # not the 0600 of a temporary file


def test_checkpoint_round_trip_and_refusals(tmp_path):
    params, velocity = init_params(1), init_params(2)
    losses = np.array([2.3, 1.1, 0.7])
    record = {"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "test_accuracy": 0.8, "seconds": 1.5, "lr": 0.01}
    state = TrainState(params, velocity, Recipe(epochs=3), n_train=640, backend="numpy", epoch=2, step=3,
                       rng_state=np.random.default_rng(0).bit_generator.state, epoch_losses=[losses],
                       history=[record])
    path = state.save(tmp_path / "c.npz")
    p, v, l, meta = load_checkpoint(path)
    assert all(np.array_equal(x, y) for x, y in zip(params + velocity, p + v))
    assert np.array_equal(l, losses) and meta["epoch"] == 2 and meta["step"] == 3
    assert TrainState.load(path)[0].meta() == state.meta()
    with pytest.raises(ModelFileError, match="this is a trained model, not a training checkpoint"):
        load_checkpoint(save_model(tmp_path / "m.npz", params))
    members = {**dict(np.load(path)), "meta": np.array('{"format": "digitbench-model"}')}
    np.savez(tmp_path / "c2.npz", **members)
    with pytest.raises(ModelFileError, match="not a digitbench checkpoint .*format 'digitbench-checkpoint'"):
        load_checkpoint(tmp_path / "c2.npz")
