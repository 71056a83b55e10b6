"""The ``testbed`` console script.

Each public module in this package is one sub-command family and defines
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a handler taking the parsed
namespace and returning an exit code). Modules are discovered, so adding a command touches no shared
file. Heavy imports (torch, numba kernels) belong inside the handlers so ``testbed --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from testbed import __version__
from testbed.errors import TestbedError

log = logging.getLogger("testbed")


def build_parser() -> argparse.ArgumentParser:
    """Parser with every discovered sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="testbed", description="Radio federated-learning testbed (OFDM PHY, radios, hybrid training)."
    )
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run the handler, turn expected failures into a one-line message and exit 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except TestbedError as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
