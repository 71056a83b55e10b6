"""``python -m testbed``: the ``testbed`` command (testbed sim starts its processes this way)."""

import sys

from testbed.cli import main

sys.exit(main())
