"""digitbench.files: the one writer of every output file, and its destination check.

Each rule of the module docstring has a test here: special files are never replaced
(a FIFO refused, a character device written through), the temporary file disappears
on every exit path (an exception, Ctrl-C, SIGTERM, a failed verification), each OS
error is one line naming the path, and the check runs before any work.
"""

import errno
import os
import signal
import socket
import stat
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitbench.errors import OutputError, Terminated, UsageError
from digitbench.files import check_destination, check_distinct, write_file


def _names(folder):
    return sorted(os.listdir(folder))


def test_writes_a_new_file_readable_by_others(tmp_path):
    path = write_file(tmp_path / "a.bin", lambda f: f.write(b"hello"))
    assert path.read_bytes() == b"hello" and _names(tmp_path) == ["a.bin"]
    assert path.stat().st_mode & 0o044 == 0o044  # not the 0600 of mkstemp


def test_replaces_a_regular_file_and_keeps_its_mode(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_file(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt(), OSError(errno.ENOSPC, "No space")])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def write(f):
        f.write(b"half")
        raise failure

    with pytest.raises((type(failure), OutputError)) as info:
        write_file(path, write)
    if isinstance(failure, OSError):  # an OS error becomes one line naming the path
        assert info.type is OutputError and str(info.value) == f"{path}: cannot write (No space)"
    assert path.read_bytes() == b"old" and _names(tmp_path) == ["a.bin"]


def test_sigterm_during_the_write_removes_the_temporary_and_restores_the_handler(tmp_path):
    path = tmp_path / "a.bin"
    before = signal.getsignal(signal.SIGTERM)

    def write(f):
        f.write(b"half")
        os.kill(os.getpid(), signal.SIGTERM)  # delivered here, in the main thread

    with pytest.raises(Terminated):
        write_file(path, write)
    assert _names(tmp_path) == [] and signal.getsignal(signal.SIGTERM) == before


def test_verify_failure_leaves_the_destination_untouched(tmp_path):
    path = tmp_path / "a.gz"
    path.write_bytes(b"good")

    def verify(tmp):
        assert open(tmp, "rb").read() == b"bad"  # the content is on disk when verify runs
        raise ValueError("checksum")

    with pytest.raises(ValueError, match="checksum"):
        write_file(path, lambda f: f.write(b"bad"), verify=verify)
    assert path.read_bytes() == b"good" and _names(tmp_path) == ["a.gz"]


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="is a FIFO .*not a regular file"):
        write_file(fifo, lambda f: f.write(b"x"))
    assert stat.S_ISFIFO(fifo.stat().st_mode) and _names(tmp_path) == ["pipe"]


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(UsageError, match="is a socket"):
            check_destination(path, "--out")


def test_dev_null_is_written_through_not_replaced():
    write_file("/dev/null", lambda f: f.write(b"x" * 1000))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_copy_of_dev_null_stays_a_device(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    write_file(node, lambda f: f.write(b"x"))
    assert stat.S_ISCHR(node.stat().st_mode) and _names(tmp_path) == ["null"]


def test_dev_full_is_one_line():
    with pytest.raises(OutputError, match=r"^/dev/full: cannot write \(No space left on device\)$"):
        write_file("/dev/full", lambda f: f.write(b"x" * 100_000))


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "adir", "is a folder; name a file in it"),
    (lambda p: p / "missing" / "m.npz", "folder .*missing does not exist"),
    (lambda p: p / "afile" / "m.npz", "folder .*afile is not a folder"),
    (lambda p: "/proc/digitbench-test.npz", "cannot write in folder /proc"),  # even root cannot create there
    (lambda p: "", "not a file name"),
])
def test_check_destination_refusals_name_option_and_path(tmp_path, make, words):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_bytes(b"")
    path = make(tmp_path)
    with pytest.raises(UsageError, match=words) as info:
        check_destination(path, "--out")
    message = str(info.value)
    assert message.startswith(f"--out {path}") and "\n" not in message
    assert sorted(os.listdir(tmp_path)) == ["adir", "afile"]  # the probe left nothing


def test_check_destination_unwritable_folder_without_root(tmp_path, monkeypatch):
    """Permission bits mean nothing to root; the check tries a file, so simulate the refusal."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UsageError, match=r"--plot .*c.png: cannot write in folder .* \(Permission denied\)"):
        check_destination(tmp_path / "c.png", "--plot")


def test_check_distinct(tmp_path):
    check_distinct(tmp_path / "a", tmp_path / "b", "--out", "--checkpoint")
    with pytest.raises(UsageError, match="--checkpoint .* is the same file as --out"):
        check_distinct(tmp_path / "a", tmp_path / "." / "a", "--out", "--checkpoint")


@settings(max_examples=60, deadline=None)
@given(name=st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1,
                    max_size=60).filter(lambda n: n not in (".", "..")),
       content=st.binary(max_size=2000))
def test_any_file_name_round_trips_and_leaves_one_file(name, content):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        try:
            write_file(path, lambda f: f.write(content))
        except OutputError as e:  # a name too long for the file system: one line, nothing left
            assert "File name too long" in str(e) and os.listdir(folder) == []
            return
        assert open(path, "rb").read() == content and os.listdir(folder) == [name]


def test_a_zip_written_through_a_device(tmp_path, monkeypatch):
    """np.savez seeks; a device may not: the content is built in memory, then written in
    one piece. A regular file stands for the device (its bytes can be read back)."""
    import numpy as np

    from digitbench import files

    device = tmp_path / "device"
    device.write_bytes(b"")
    monkeypatch.setattr(files, "_is_char_device", lambda path: os.fspath(path) == os.fspath(device))
    seekable = []

    def save(f):
        seekable.append(f.seekable())
        np.savez(f, a=np.arange(3.0))

    assert os.fspath(write_file(device, save)) == os.fspath(device)
    assert seekable == [True] and _names(tmp_path) == ["device"]  # written through: no temporary, no rename
    with np.load(device) as saved:
        assert np.array_equal(saved["a"], np.arange(3.0))
    monkeypatch.undo()  # the real check again: a real device takes the same path
    write_file("/dev/null", save)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and seekable == [True, True]
