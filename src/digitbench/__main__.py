"""``python -m digitbench``: the same as the ``digitbench`` command."""

import sys

from .cli import main

sys.exit(main())
