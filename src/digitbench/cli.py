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
from .commands.options import OneLineParser
from .errors import DigitbenchError, Terminated

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
    temporary file removed). A standard output that cannot be written (``> /dev/full``)
    is one line too, not a traceback.
    """
    _tolerant_streams()
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    sys.stdout = _GuardedStream(stdout)
    try:
        status = args.func(args) or 0
        sys.stdout.flush()  # here, not at exit, so that a full disk is reported
        return status
    except StdoutError as e:
        _discard_stdout(stdout)
        print(f"digitbench {args.command}: error: cannot write to standard output ({e})", file=sys.stderr)
        return 1
    except DigitbenchError as e:
        print(f"digitbench {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"digitbench {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"digitbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout(stdout)
        return 0
    finally:
        sys.stdout = stdout


class StdoutError(Exception):
    """Standard output failed (a full disk, an I/O error); the message is the reason."""


class _GuardedStream:
    """Standard output whose OS errors (but a closed pipe's) become :class:`StdoutError`,
    so that ``main`` can tell them from the OS errors of anything else."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def _guard(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(e.strerror or str(e)) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _tolerant_streams():
    """Never crash on printing: characters the terminal's encoding lacks (a file name in
    another encoding, say) come out as backslash escapes."""
    for stream in (sys.stdout, sys.stderr):
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


if __name__ == "__main__":
    sys.exit(main())
