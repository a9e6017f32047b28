"""The ``digitbench`` command: train, evaluate, predict, download, and more.

Every error a user can cause reaches :func:`main` as a
:class:`~digitbench.errors.DigitbenchError` and is printed as one line on standard
error with a non-zero exit; argparse's own errors are folded into one line too. Each
subcommand lives in its own module of :mod:`digitbench.commands`.
"""

import os
import sys

from . import __version__
from .commands import COMMANDS
from .commands.options import OneLineParser, check_environment
from .errors import DigitbenchError, Terminated, one_line

#: The description of ``digitbench --help`` in plain text (not read from ``__doc__``,
#: which has markup and which ``python -OO`` strips).
DESCRIPTION = "An MNIST classifier built from first principles, and a benchmark: train, evaluate, predict, and more."


def build_parser():
    """The argument parser of ``digitbench`` with every subcommand of :data:`COMMANDS`."""
    parser = OneLineParser(prog="digitbench", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    """Run one subcommand; returns the exit status.

    0 success, 1 an error the user can fix (one line on stderr), 2 a bad option
    (argparse), 130 Ctrl-C, 143 SIGTERM while a file was being written (the
    temporary file removed). A standard output that is closed (``>&-``), full
    (``> /dev/full``) or a pipe whose reader left (``| head -1``) does not stop the
    command: it runs to the end (a model is trained and saved), and one line on stderr
    says that its output was lost; the status is then 141 for a closed pipe, else 1.
    """
    _open_missing_streams()
    _tolerant_streams()
    stdout = sys.stdout if isinstance(sys.stdout, _SafeStdout) else _SafeStdout(sys.stdout)
    sys.stdout = stdout
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, --version or a bad option: argparse's own exit
            if stdout.lost:
                print(f"digitbench: standard output was lost ({stdout.lost})", file=sys.stderr)
                raise SystemExit(1) from None
            raise
        status = _run(args)
        stdout.flush()  # here, not at exit, so that a full disk is reported
    finally:
        sys.stdout = stdout.stream
    if stdout.lost:
        print(f"digitbench {args.command}: standard output was lost ({stdout.lost}); the command still ran to "
              "the end", file=sys.stderr)
        return status or (EXIT_PIPE_CLOSED if stdout.lost == PIPE_CLOSED else 1)
    return status


#: The exit status of a command whose standard output was a closed pipe (128 + SIGPIPE).
EXIT_PIPE_CLOSED = 141
PIPE_CLOSED = "the reading end of the pipe was closed"


def _run(args):
    """``args.func(args)``, every error a user can cause as one line on stderr: the status."""
    try:
        check_environment()
        return args.func(args) or 0
    except DigitbenchError as e:
        lines = str(e).split("\n") if getattr(e, "multiline", False) else [str(e)]
        print(f"digitbench {args.command}: error: " + "\n".join(map(one_line, lines)), file=sys.stderr)
        return 1
    except Terminated as e:
        print(f"digitbench {args.command}: {e.words}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print(f"digitbench {args.command}: interrupted", file=sys.stderr)
        return 130


class _SafeStdout:
    """Standard output that never stops a command: the first write that fails (a closed
    pipe, a full disk, an I/O error) points the descriptor at /dev/null and records
    why in ``lost``; later writes are dropped. One wrapper for every command."""

    def __init__(self, stream, lost=None):
        self.stream = stream
        self.lost = lost

    def write(self, text):
        return self._guard(self.stream.write, text) if not self.lost else len(text)

    def flush(self):
        if not self.lost:
            self._guard(self.stream.flush)

    def _guard(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            self._lose(PIPE_CLOSED)
        except (OSError, ValueError) as e:  # ValueError: a stream closed under us
            self._lose(getattr(e, "strerror", None) or str(e))
        return 0

    def _lose(self, reason):
        self.lost = reason
        _discard_stdout(self.stream)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _open_missing_streams():
    """Standard streams closed at start (``>&-``): their descriptors become /dev/null.

    Otherwise the first file opened would get descriptor 0, 1 or 2 and a later print
    would write into it (a model file, say). A closed standard output is reported at
    the end as lost output; the command itself runs as usual.
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        stream = open(fd, "r" if fd == 0 else "w", closefd=False, errors="backslashreplace")
        setattr(sys, name, stream)
        if fd == 1:
            sys.stdout = _SafeStdout(stream, "it was closed")
    for name, fd in (("stdout", 1), ("stderr", 2)):
        if getattr(sys, name) is None:  # the descriptor exists but Python has no stream for it
            setattr(sys, name, open(fd, "w", closefd=False, errors="backslashreplace"))


def _tolerant_streams():
    """Never crash on printing: characters the terminal's encoding lacks (a file name in
    another encoding, say) come out as backslash escapes."""
    for stream in (sys.stdout, sys.stderr):
        stream = getattr(stream, "stream", stream)
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # a replaced stream (pytest's capture, a notebook): leave it alone


def _discard_stdout(stream):
    """Point the stdout descriptor at /dev/null, so the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    try:  # what Python's buffer still holds goes to /dev/null now, not at exit
        stream.flush()
    except (OSError, AttributeError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
