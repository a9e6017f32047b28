"""Mutated metadata fed to every loader: a result, or the project's own one-line error.

A real model file and a real checkpoint are written once; hypothesis then replaces,
deletes or adds keys of their JSON metadata (at the top and inside ``config``, ``cli``,
``history`` and ``rng_state``) with values of every JSON type, huge integers included,
and loads the file with :func:`digitbench.load_model`, :func:`~digitbench.model_io.load_checkpoint`
and :meth:`~digitbench.train.TrainState.load`. Anything but a DigitbenchError fails.
The example count follows the hypothesis profile (tests/conftest.py).
"""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digitbench import load_model
from digitbench.datasets import MnistData, synthetic_data
from digitbench.errors import DigitbenchError
from digitbench.model_io import load_checkpoint
from digitbench.train import TrainingInterrupted, TrainState, train

#: Written into the JSON as an integer of 5,000 digits (which neither json.dumps nor
#: hypothesis's reports can hold as a Python int).
HUGE = "<huge integer>"
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70), st.just(HUGE),
                         st.floats(allow_nan=False), st.text(max_size=12),
                         st.sampled_from(["float32", "float64", "numpy", "seed", "mnist", "PCG64", "", "x" * 2000]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real model and a real checkpoint, from two epochs on 640 synthetic images."""
    folder = tmp_path_factory.mktemp("meta")
    data = synthetic_data(seed=3)
    data = MnistData(data.train_images[:640], data.train_labels[:640], data.test_images[:100], data.test_labels[:100])
    result = train("numpy", data, epochs=2)
    model = result.save(folder / "m.npz", dataset="mnist", recipe="seed")

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train("numpy", data, epochs=2, on_epoch=stop)
    checkpoint = info.value.checkpoint.save(folder / "c.npz",
                                            cli=dict(recipe="seed", dataset="mnist", out="m.npz", backend="numpy"))
    return {"model": (model, dict(np.load(model))), "checkpoint": (checkpoint, dict(np.load(checkpoint)))}


@st.composite
def mutations(draw):
    """(where, key, action, value): where is None (top level) or a nested key."""
    where = draw(st.sampled_from([None, None, "config", "cli", "history", "rng_state"]))
    key = draw(st.sampled_from(["epoch", "step", "seed", "dataset", "config", "history", "cli", "dtype", "recipe",
                                "backend", "test_accuracy", "rng_state", "n_train", "steps_per_epoch", "lr",
                                "epochs", "batch_size", "train_clock", "reached_at", "test_acc", "out", "state",
                                "format", "format_version", "layer_sizes", "schedule", "momentum", "loss"]))
    return where, key, draw(st.sampled_from(["set", "set", "set", "delete"])), draw(json_values)


def _mutate(meta, where, key, action, value):
    target = meta if where is None else meta.get(where)
    if isinstance(target, list):  # history: mutate its first record
        target = target[0] if target and isinstance(target[0], dict) else None
    if isinstance(target, dict):
        if action == "delete":
            target.pop(key, None)
        else:
            target[key] = value
    return meta


def _write(tmp_path, members, meta):
    path = tmp_path / "mutated.npz"
    text = json.dumps(meta).replace(json.dumps(HUGE), "7" * 5000)
    np.savez(path, **{**members, "meta": np.array(text)})
    return path


@given(mutation=mutations())
def test_mutated_model_metadata(files, tmp_path_factory, mutation):
    path, members = files["model"]
    meta = _mutate(json.loads(str(members["meta"])), *mutation)
    mutated = _write(tmp_path_factory.mktemp("m"), members, meta)
    try:
        load_model(mutated)
    except DigitbenchError as e:
        assert "\n" not in str(e)


@given(mutation=mutations())
def test_mutated_checkpoint_metadata(files, tmp_path_factory, mutation):
    path, members = files["checkpoint"]
    meta = _mutate(json.loads(str(members["meta"])), *mutation)
    mutated = _write(tmp_path_factory.mktemp("c"), members, meta)
    for load in (load_checkpoint, TrainState.load):
        try:
            load(mutated)
        except DigitbenchError as e:
            assert "\n" not in str(e)


def test_the_unmutated_files_load(files):
    """The fuzzing starts from valid files: the loaders accept them as written."""
    params, meta = load_model(files["model"][0])
    state, _ = TrainState.load(files["checkpoint"][0])
    assert meta["recipe"] == "seed" and len(meta["history"]) == 2
    assert (state.epoch, state.step, state.recipe.epochs) == (1, 8, 2)  # 10 steps: the last chunk is 8-10


@pytest.mark.parametrize("dtype, shape", [("|V0", (10**10, 10**10)), ("|V8", (784, 128)), ("<i8", (784, 128))])
def test_a_member_that_is_not_floats_is_refused(files, tmp_path, dtype, shape):
    """A member of a zero-size, raw or integer dtype (|V0 of shape 1e10 x 1e10 once ended in a traceback)."""
    import io
    import zipfile

    from numpy.lib import format as npformat

    path, members = files["model"]
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, array in members.items():
            buffer = io.BytesIO()
            if name == "W1":
                npformat.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
                buffer.write(b"\0" * (np.dtype(dtype).itemsize * (0 if dtype == "|V0" else 784 * 128)))
            else:
                np.save(buffer, array)
            zf.writestr(f"{name}.npy", buffer.getvalue())
    with pytest.raises(DigitbenchError, match=r"W1 has dtype .*(not numbers or text|expected float32 or float64)"):
        load_model(bad)
