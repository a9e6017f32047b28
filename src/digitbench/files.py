"""Writing output files: one helper for every file digitbench writes.

Models, checkpoints, figures, JSON records and downloaded data files all go through
:func:`write_file`, and the commands call :func:`check_destination` on each output
path right after parsing their options, before any data are loaded or any training
starts, so a bad path costs nothing. The rules:

- the destination's folder must exist and accept a new file (tried, not guessed from
  permission bits, which mean nothing to root or on a read-only mount);
- the destination must not be a folder, and an existing destination must be a regular
  file, which is replaced atomically (a temporary file in the same folder, ``fsync``,
  then ``os.replace``: readers see the old file or the new one, never half of it);
- a character device (``/dev/null``) is written through, never renamed over; a FIFO,
  socket or block device is refused: replacing it would destroy it, writing into it
  could block or corrupt a disk;
- the temporary file is removed on every exit path: an exception, Ctrl-C, and SIGTERM
  (a handler converts it to :class:`~digitbench.errors.Terminated` while the write runs);
- every OS error becomes one :class:`~digitbench.errors.OutputError` line naming the path.
"""

import io
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

from .errors import OutputError, Terminated, UsageError

KINDS = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket", stat.S_ISBLK: "a block device",
         stat.S_ISDIR: "a folder"}


def _kind(mode):
    """What a non-regular file is, in words, or None for a regular file or character device."""
    return next((words for test, words in KINDS.items() if test(mode)), None)


def check_destination(path, option=None):
    """Refuse, before any work, an output path that could not be written or must not be.

    Parameters
    ----------
    path : str or Path
        Where a file will be written.
    option : str, optional
        The command-line option that named it (e.g. ``"--out"``), for the message.

    Returns
    -------
    Path

    Raises
    ------
    UsageError
        One line naming the option and the path: the folder is missing or not
        writable, or the path is a folder, a FIFO, a socket or a block device.
    """
    path = Path(path)
    label = f"{option} {path}" if option else str(path)
    if str(path) in ("", "."):
        raise UsageError(f"{label}: not a file name")
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None  # a new file; its folder is checked below
    except OSError as e:
        raise UsageError(f"{label}: cannot use it ({e.strerror or e})") from None
    if mode is not None:
        kind = _kind(mode)
        if kind == "a folder":
            raise UsageError(f"{label}: is a folder; name a file in it")
        if kind:
            raise UsageError(f"{label}: is {kind}, not a regular file; digitbench writes only regular files "
                             "(or through a character device such as /dev/null)")
        if stat.S_ISCHR(mode):
            return path
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{label}: folder {folder} {what}")
    try:  # the only reliable test of "can a file be created here": create one
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"{label}: cannot write in folder {folder} ({e.strerror or e})") from None
    return path


def check_distinct(first, second, first_option, second_option):
    """Refuse two outputs that are the same file (one would overwrite the other)."""
    a, b = Path(first), Path(second)
    if a.resolve() == b.resolve():
        raise UsageError(f"{second_option} {second} is the same file as {first_option} {first}; "
                         "one would overwrite the other")


def write_file(path, write, verify=None, mode=None):
    """Write a file safely: ``write(f)`` on a temporary file beside ``path``, then rename.

    Parameters
    ----------
    path : str or Path
        The destination (see :func:`check_destination` for what is refused).
    write : callable(f) -> None
        Writes the content to ``f``, a binary file object.
    verify : callable(temporary path) -> None, optional
        Called after the content is on disk and before the rename: raising here
        (for example a checksum mismatch) leaves the destination untouched.
    mode : int, optional
        Permission bits of the result (default: those of the file replaced, else
        0666 less the umask, as a plain ``open`` would give).

    Returns
    -------
    Path
    """
    path = check_destination(path)
    if _is_char_device(path):  # /dev/null and the like: written through, in one piece
        buffer = io.BytesIO()  # seekable, as zip writers need; a device may not be
        write(buffer)
        try:
            with open(path, "wb") as f:
                f.write(buffer.getvalue())
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
        return path
    tmp = None
    try:
        with _sigterm_raises():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if verify is not None:
                verify(tmp)
            os.chmod(tmp, _mode_for(path) if mode is None else mode)  # mkstemp's 0600 would make it private
            os.replace(tmp, path)
            tmp = None
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _is_char_device(path):
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _mode_for(path):
    """The permissions a plain ``open(path, "w")`` would give: kept, or 0666 less umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)  # reading the umask means setting it; restored at once
        os.umask(umask)
        return 0o666 & ~umask


class _sigterm_raises:
    """While active (main thread only), SIGTERM raises :class:`Terminated`; restored after."""

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
        return False


def _raise_terminated(signum, frame):
    raise Terminated()
