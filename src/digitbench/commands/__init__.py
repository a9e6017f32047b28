"""The subcommands of ``digitbench``, one module each (the command-line layer).

Each module defines ``add_parser(subparsers)``, which registers its subcommand with
``func=run``; :func:`digitbench.cli.build_parser` calls them in the order of
:data:`COMMANDS`. Nothing below this package imports it or argparse
(docs/architecture.md; tests/test_architecture.py enforces it).
"""

from . import bench, download, evaluate, experiment, gradcheck, plot, predict, train

#: The subcommands, in the order ``digitbench --help`` lists them.
COMMANDS = (train, evaluate, predict, download, experiment, plot, bench, gradcheck)
