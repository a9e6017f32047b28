"""The ``digitbench`` command: train, evaluate, predict, download, and more.

Every error a user can cause reaches :func:`main` as a
:class:`~digitbench.errors.DigitbenchError` and is printed as one line on standard
error with a non-zero exit; argparse's own errors are folded into one line too. Each
subcommand lives in its own module of :mod:`digitbench.commands`.
"""

import sys

from . import __version__
from .commands import COMMANDS
from .commands.options import OneLineParser
from .errors import DigitbenchError
from .train import Terminated


#: ``digitbench --help``'s first line, in plain text (the module docstring has markup).
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
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
        return 0


if __name__ == "__main__":
    sys.exit(main())
