"""Energy per round of the policy's resource allocation vs every UE at maximum power and frequency.

Same as ``testbed policy bench`` (arguments are passed through), e.g.
``python benchmarks/resource_allocation.py --json``.
"""

import sys

from testbed.cli import main

if __name__ == "__main__":
    sys.exit(main(["policy", "bench", *sys.argv[1:]]))
