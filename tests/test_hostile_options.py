"""The hostile run, part 1: numeric options and output paths, all refused before any data.

Each attempt names ``--data-dir`` of a folder that does not exist: a refusal that
mentions the data folder would mean the check came too late (after loading, or after
training). Issue 12, items 2, 6, 7 and 8.
"""

import pytest

from digitbench.commands.options import MAX_SEED, TRAIN_IMAGES  # noqa: F401  (MAX_SEED: recipe.py's)
from hostile import Workspace, attempt

NO_DATA = ["--data-dir", "/nonexistent-digitbench-data"]
TOO_LATE = ("no such data folder", "missing")


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path)
    yield workspace
    workspace.check_intact()


# (argv, words in the one-line error); argparse's refusals exit 2, digitbench's 1
OPTIONS = [
    (["train", "--seed", "-1"], f"outside 0 .. {MAX_SEED}"),
    (["train", "--seed", str(MAX_SEED + 1)], "seeds are 32-bit unsigned"),
    (["train", "--seed", "1.5"], "not a whole number"),
    (["train", "--batch-size", str(TRAIN_IMAGES + 1)], "more than the 60,000 training images"),
    (["train", "--batch-size", "1000000000000"], "60000 is the largest"),
    (["train", "--epochs", "1000000000"], "epochs"),
    (["train", "--epochs", "100000"], "a model file holds one history record an epoch"),
    (["train", "--lr", "1e309"], "must be a positive number"),
    (["train", "--momentum", "1"], "--momentum must be in [0, 1)"),
    (["train", "--momentum", "nan"], "--momentum must be in [0, 1)"),
    (["train", "--decay", "-1"], "--decay must be a non-negative number"),
    (["train", "--decay", "inf"], "--decay must be a non-negative number"),
    (["train", "--target-accuracy", "1.5"], "fraction in (0, 1]"),
    (["gradcheck", "--seed", "-1"], "outside 0 .."),
    (["gradcheck", "--seed", str(2**64)], "seeds are 32-bit unsigned"),
    (["gradcheck", "--batch-size", "100000000"], "is more than 64, a gradient check's batch"),
    (["gradcheck", "--batch-size", "200000"], "is more than 64"),
    (["gradcheck", "--entries", "1000000"], "is more than 1,000"),
    (["gradcheck", "--eps", "1e300"], "a step that large measures no derivative"),
    (["train", "--threads", "40000"], "threads for each of this machine's"),
    (["evaluate", "--threads", "100000"], "threads for each of this machine's"),
    (["bench", "--threads", "100000"], "threads for each of this machine's"),
    (["gradcheck", "--eps", "nan"], "must be a positive number"),
    (["gradcheck", "--entries", "0"], "must be positive"),
    (["experiment", "softmax-overflow", "--seed", "-1"], "outside 0 .."),
    (["experiment", "softmax-overflow", "--subset", "60001"], "more than 60,000, the training images there are"),
    (["experiment", "softmax-overflow", "--test-subset", "10001"], "more than 10,000, the test images there are"),
    (["experiment", "softmax-overflow", "--epochs", "1000000000"], "a model file holds one history record an epoch"),
    (["experiment", "softmax-overflow", "--momentum", "1"], "--momentum must be in [0, 1)"),
    (["experiment", "sigmoid", "--norm-every", "0"], "must be positive"),
    (["bench", "--batch-size", "10000000000"], "60000 is the largest"),
    (["bench", "--batch-size", str(TRAIN_IMAGES + 1)], "more than the 60,000 training images"),
    (["bench", "--threads", "0"], "must be positive"),
    (["bench", "--repeats", "0"], "must be positive"),
    (["bench", "--backends", ","], "--backends is empty"),
    (["bench", "--backends", "numpy,tensorflow"], "unknown backend 'tensorflow'"),
]


@pytest.mark.parametrize("argv, words", OPTIONS, ids=[" ".join(a) for a, _ in OPTIONS])
def test_option_refused_before_the_data(ws, capsys, argv, words):
    attempt(capsys, [*argv, *NO_DATA] if argv[0] != "gradcheck" else argv, words=[words], not_words=TOO_LATE)


# (argv, words); "{chardev}" and the like are filled from the workspace
OUTPUTS = [
    (["train", "--out", "nodir/m.npz"], "--out nodir/m.npz: folder nodir does not exist"),
    (["train", "--out", "adir"], "--out adir: is a folder"),
    (["train", "--out", "fifo"], "--out fifo: is a FIFO"),
    (["train", "--out", "/proc/m.npz"], "cannot write in folder /proc"),
    (["train", "--checkpoint", "nodir/ck.npz"], "--checkpoint nodir/ck.npz: folder nodir does not exist"),
    (["train", "--checkpoint", "fifo"], "--checkpoint fifo: is a FIFO"),
    (["train", "--out", "", "--checkpoint", "adir"], "--checkpoint adir: is a folder"),
    (["train", "--out", "nodir/m.npz", "--checkpoint", "ck.npz"], "--out nodir/m.npz"),
    (["train", "--out", "keep.npz", "--checkpoint", "keep.npz"], "is the same file as"),
    (["train", "--out", "x.npz", "--checkpoint", "./x.npz"], "is the same file as"),
    (["train", "--out", "x.npz", "--plot", "x.npz"], "is the same file as"),
    (["train", "--plot", "adir"], "--plot adir: is a folder"),
    (["train", "--plot", "fifo"], "--plot fifo: is a FIFO"),
    (["train", "--plot", "nodir/c.png"], "folder nodir does not exist"),
    (["train", "--plot", "/proc/c.png"], "cannot write in folder /proc"),
    (["train", "--out", "keep.npz/m.npz"], "folder keep.npz is not a folder"),
    (["plot", "--model", "keep.npz", "--out-dir", "/proc"], "cannot write in folder /proc"),
    (["plot", "--model", "keep.npz", "--out-dir", "fifo"], "folder fifo is not a folder"),
    (["plot", "--model", "keep.npz", "--out-dir", "keep.npz"], "folder keep.npz is not a folder"),
    (["experiment", "softmax-overflow", "--out-dir", "/proc"], "cannot write in folder /proc"),
    (["experiment", "sigmoid", "--out-dir", "keep.npz"], "folder keep.npz is not a folder"),
    (["bench", "--plot", "nodir/b.png"], "--plot nodir/b.png: folder nodir does not exist"),
    (["bench", "--plot", "adir"], "--plot adir: is a folder"),
    (["bench", "--plot", "fifo"], "--plot fifo: is a FIFO"),
    (["bench", "--out-json", "nodir/x.json"], "--out-json nodir/x.json: folder nodir does not exist"),
    (["bench", "--out-json", "/proc/x.json"], "cannot write in folder /proc"),
    (["bench", "--out-json", "adir"], "--out-json adir: is a folder"),
    (["bench", "--no-plot", "--out-json", "fifo"], "--out-json fifo: is a FIFO"),
    (["bench", "--plot", "x.png", "--out-json", "x.png"], "is the same file as"),
    (["download", "--data-dir", "/proc/mnist"], "cannot create the data folder"),
    (["download", "--data-dir", "keep.npz"], "cannot create the data folder"),
]


@pytest.mark.parametrize("argv, words", OUTPUTS, ids=[" ".join(a) for a, _ in OUTPUTS])
def test_output_refused_before_any_work(ws, capsys, argv, words):
    extra = NO_DATA if argv[0] not in ("download",) else []
    attempt(capsys, [*argv, *extra], status=1, words=[words], not_words=TOO_LATE)
