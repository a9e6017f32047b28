"""Writing output files: one helper for every file digitbench writes.

Models, checkpoints, figures, JSON records and downloaded data files all go through
:func:`write_file`, and the commands call :func:`check_destination` on each output
path right after parsing their options, before any data are loaded or any training
starts, so a bad path costs nothing. The rules:

- the destination's folder must exist and accept a new file (tried, not guessed from
  permission bits, which mean nothing to root or on a read-only mount);
- a name ending in ``/`` names a folder and is refused; a symbolic link is followed
  (its target is written, the link kept); a name too long for the file system is
  refused before any work (:func:`resolve_output`);
- the destination must not be a folder, and an existing destination must be a regular
  file, which is replaced atomically (a temporary file in the same folder, ``fsync``,
  then ``os.replace``: readers see the old file or the new one, never half of it);
- a character device (``/dev/null``) is written through, never renamed over; a FIFO,
  socket or block device is refused: replacing it would destroy it, writing into it
  could block or corrupt a disk;
- the temporary file is removed on every exit path: an exception, Ctrl-C, and SIGTERM
  (a handler converts it to :class:`~digitbench.errors.Terminated` while the write runs);
  a process killed outright (SIGKILL) leaves ``.digitbench-PID-XXXXXXXX.tmp``, which
  the next write to that folder removes (:func:`remove_stale_temporaries`);
- every OS error becomes one :class:`~digitbench.errors.OutputError` line naming the path.
"""

import contextlib
import io
import os
import re
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


def describe_kind(mode):
    """What a file of ``mode`` (``st_mode``) is, in words: "a regular file", "a FIFO (named pipe)", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return _kind(mode) or ("a character device" if stat.S_ISCHR(mode) else "a special file")


def resolve_output(path, option=None):
    """The file an output path names, before anything is written: one resolver for all.

    A name ending in ``/`` (or ``.``) names a folder and is refused, even when no such
    folder exists yet (``--out runs/`` must not create a file ``runs``); a symbolic link
    is followed, so the file it points to is written and the link stays a link; a name
    longer than the file system allows is refused now rather than after the work.

    Returns
    -------
    Path, the destination with its links resolved.

    Raises
    ------
    UsageError, one line naming the option and the path.
    """
    text = os.fspath(path)
    label = f"{option} {text}" if option else text
    if text in ("", ".") or text.endswith((os.sep, "/.", "/..")) or text == "..":
        raise UsageError(f"{label}: names a folder, not a file; name a file in it (e.g. {text.rstrip(os.sep) or '.'}"
                         f"{os.sep}model.npz)" if text else f"{label}: not a file name")
    resolved = Path(os.path.realpath(text))
    name_max = _name_max(resolved.parent)
    for name in (Path(text).name, resolved.name):
        if len(os.fsencode(name)) > name_max:
            raise UsageError(f"{label}: the file name is {len(os.fsencode(name))} bytes long; this file system "
                             f"allows {name_max}")
    return resolved


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_destination(path, option=None):
    """Refuse, before any work, an output path that could not be written or must not be.

    Parameters
    ----------
    path : str or Path
        Where a file will be written (see :func:`resolve_output`: links are followed).
    option : str, optional
        The command-line option that named it (e.g. ``"--out"``), for the message.

    Returns
    -------
    Path, the destination with its links resolved.

    Raises
    ------
    UsageError
        One line naming the option and the path: the folder is missing or not
        writable, or the path is a folder, a FIFO, a socket or a block device.
    """
    label = f"{option} {os.fspath(path)}" if option else os.fspath(path)
    given_path, path = path, resolve_output(path, option)
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
    given = Path(os.fspath(given_path)).parent  # named as the user named it, unless a link led elsewhere
    shown = given if os.path.realpath(given) == str(folder) else folder
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{label}: folder {shown} {what}")
    try:  # the only reliable test of "can a file be created here": create one
        fd, probe = _temporary(folder, ".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"{label}: cannot write in folder {shown} ({e.strerror or e})") from None
    return path


#: Temporary files are named ``.digitbench-PID-XXXXXXXX.tmp`` (PID: the writing process),
#: short whatever the destination's name, and recognisable: one whose process is gone
#: (killed with SIGKILL mid-write, say) is removed by the next write to its folder.
TEMPORARY = re.compile(r"^\.digitbench-(\d+)-[A-Za-z0-9_]+\.(tmp|probe)$")


def _temporary(folder, suffix):
    """A new temporary file in ``folder``: (descriptor, path)."""
    return tempfile.mkstemp(prefix=f".digitbench-{os.getpid()}-", suffix=suffix, dir=folder)


def remove_stale_temporaries(folder):
    """Remove the temporary files in ``folder`` left by digitbench processes that are gone.

    Returns the names removed. A file of a process still running (or of a process
    this one may not signal) is kept.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = TEMPORARY.match(name)
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
                removed.append(name)
    return removed


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
    remove_stale_temporaries(path.parent)
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
        with terminating_signals_raise():
            fd, tmp = _temporary(path.parent, ".tmp")
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


#: Signals that end a process by default and that digitbench turns into :class:`Terminated`:
#: a kill (SIGTERM), a closed terminal or ssh session (SIGHUP), a CPU-time limit (SIGXCPU).
TERMINATING = (signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU)


class terminating_signals_raise:
    """While active (main thread only), each of :data:`TERMINATING` raises
    :class:`Terminated` naming it; the previous handlers are restored after. Used around
    every file write here, and around training by ``digitbench train``."""

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = {s: signal.signal(s, _raise_terminated) for s in TERMINATING}
        return self

    def __exit__(self, *exc):
        if self.active:
            for s, previous in self.previous.items():
                signal.signal(s, previous if previous is not None else signal.SIG_DFL)
        return False


def _raise_terminated(signum, frame):
    raise Terminated(signum)
