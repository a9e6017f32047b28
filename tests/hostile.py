"""The hostile run's harness: run the CLI as a hostile user would, then check what it left.

Every attempt of tests/test_hostile_*.py goes through :func:`attempt`, which fails the
test on each of the four outcomes issue 12 counts: a traceback (any exception that
escapes ``main``), a destroyed or replaced file (the workspace's special files and
kept files are compared before and after), lost work (a temporary file left behind),
and a silently wrong number (a ``--json`` line that is not strict JSON, NaN included).
:data:`COUNT` tallies the attempts, for the report.
"""

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from digitbench import init_params, save_model
from digitbench.cli import main

#: Temporary names digitbench's writers use (files.write_file, its probe): none may stay.
TEMPORARY_SUFFIXES = (".tmp", ".probe", ".part")
COUNT = {"attempts": 0}


@dataclass
class Workspace:
    """A folder of things a hostile user points options at."""

    root: Path

    def __post_init__(self):
        (self.root / "adir").mkdir()
        os.mkfifo(self.root / "fifo")
        self.keep = save_model(self.root / "keep.npz", init_params(), dataset="mnist", seed=0)
        self.chardev = self.root / "null"
        try:  # a copy of /dev/null: writing must go through it, never replace it
            os.mknod(self.chardev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            self.chardev = None
        self.before = self.snapshot()

    def snapshot(self):
        """{relative path: (kind, sha256 of regular files)} of everything in the workspace."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            mode = info.st_mode
            digest = None
            if stat.S_ISREG(mode):  # a large (sparse) file by its size and time, the rest by content
                digest = (info.st_size, info.st_mtime_ns) if info.st_size > 2**26 else \
                    hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(self.root))] = (stat.S_IFMT(mode), digest)
        return found

    def check_intact(self, allowed_new=()):
        """Nothing replaced or destroyed; nothing new but ``allowed_new``; no temporary file."""
        after = self.snapshot()
        for name, before in self.before.items():
            assert after.get(name) == before, f"{name} changed: {before} -> {after.get(name)}"
        new = set(after) - set(self.before)
        left = [n for n in new if n.endswith(TEMPORARY_SUFFIXES) or Path(n).name.startswith(".")]
        assert not left, f"temporary files left behind: {left}"
        unexpected = {n for n in new if not any(n.startswith(a) for a in allowed_new)}
        assert not unexpected, f"unexpected new files: {unexpected}"


def attempt(capsys, argv, status=None, words=(), not_words=()):
    """Run ``digitbench *argv`` in this process; check the outcome; return (status, out, err).

    ``status``: the exit status expected (None: any non-zero). ``words``: substrings
    stderr (or stdout, for a success) must hold; ``not_words``: substrings it must not.
    """
    COUNT["attempts"] += 1
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits from inside parse_args
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    if status is None:
        assert code not in (0, None), (code, out, err)
    else:
        assert code == status, (code, out, err)
    if code:
        assert err.startswith("digitbench"), err
    text = err if code else out
    for word in words:
        assert word in text, (word, text)
    for word in not_words:
        assert word not in text, (word, text)
    for line in out.splitlines():
        if line.startswith("{"):
            json.loads(line, parse_constant=_refuse_constant)  # NaN or Infinity: not JSON
    return code, out, err


#: ``python -c RUNNER SUMS ARGS...``: the CLI in a process of its own, with the checksums
#: of a small data set (:func:`small_dataset`) patched in.
RUNNER = ("import json, sys; import digitbench.data as d; d.CHECKSUMS['mnist'] = json.loads(sys.argv[1]); "
          "from digitbench.cli import main; sys.exit(main(sys.argv[2:]))")
#: A training run of a second or less on :func:`small_dataset`.
QUICK_TRAIN = ["--backend", "numpy", "--epochs", "1", "--batch-size", "64", "--seed", "1", "--quiet"]


def small_dataset(mnist_data, folder, n_train=600, n_test=200):
    """The first images of real MNIST as four raw IDX files in ``folder``; returns their checksums."""
    import idx_factory
    from digitbench.datasets import MnistData

    small = MnistData(mnist_data[0][:n_train], mnist_data[1][:n_train], mnist_data[2][:n_test],
                      mnist_data[3][:n_test])
    sums, _ = idx_factory.write_dataset(folder, gz=False, data=small)
    return sums


def _refuse_constant(name):
    raise AssertionError(f"{name} in --json output: not valid JSON")
