"""The ``testbed`` console script.

Each public module in this package is one sub-command family and defines
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a handler taking the parsed
namespace and returning an exit code). Modules are discovered, so adding a command touches no shared
file. Heavy imports (torch, numba kernels) belong inside the handlers so ``testbed --help`` stays fast.

Exit status: 0 success; 2 usage or configuration errors (bad arguments, config or key files, damaged
checkpoints: fix the input and run again); 1 failures at run time (a radio, a link, a peer, a file that cannot
be written); 130 interrupted. Every failure is one line on stderr, ``testbed: error: ...``; with ``--json`` the
same failure is also one JSON object on stdout, ``{"error": ..., "kind": ..., "exit_status": ...}``.
``-v`` (more log output) may come before or after the sub-command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from testbed import __version__
from testbed.errors import ConfigError, TestbedError

log = logging.getLogger("testbed")

USAGE_EXIT_STATUS = 2
RUNTIME_EXIT_STATUS = 1
_VERBOSE_HELP = "more log output on stderr (-vv: debug)"


class UsageError(ConfigError):
    """The command line itself is wrong (unknown option, missing argument, bad value)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting, so ``main`` reports it like any failure."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _all_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    """Parser with every discovered sub-command registered."""
    parser = _Parser(
        prog="testbed", description="Radio federated-learning testbed (OFDM PHY, radios, hybrid training)."
    )
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    for child in list(_all_parsers(parser))[1:]:  # -v after the sub-command, counted apart from the global one
        child.add_argument("-v", "--verbose", dest="verbose_after", action="count", default=argparse.SUPPRESS,
                           help=_VERBOSE_HELP)  # fmt: skip
    return parser


# What the learning extra brings (pyproject's [learn]); a radio-only install has the rest: hub, radio, link, phy.
LEARNING_MODULES = frozenset({"torch", "mlxtend", "sklearn"})
LEARN_INSTALL = (
    "pip install -c constraints.txt -e '.[learn]' (on x86, torch's CPU wheel first; 32-bit Raspberry Pi OS has "
    "no torch wheels: use the 64-bit OS, docs/lab-guide.md \"Installing\")"
)


class MissingExtra(Exception):
    """A command that needs an extra that is not installed."""


def _fail(exc: BaseException, status: int, as_json: bool) -> int:
    """One line on stderr; with ``--json`` also one JSON object on stdout."""
    message = str(exc) or type(exc).__name__
    print(f"testbed: error: {message}", file=sys.stderr)
    if as_json:
        record = {"error": message, "kind": type(exc).__name__, "exit_status": status}
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run the handler, turn expected failures into one line and an exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    wants_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(exc, USAGE_EXIT_STATUS, wants_json)
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args.verbose = verbose
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.func(args) or 0)
    except TestbedError as exc:
        return _fail(exc, exc.exit_status, as_json)
    except OSError as exc:  # a file or socket the command needs (path in the message)
        return _fail(exc, RUNTIME_EXIT_STATUS, as_json)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in LEARNING_MODULES:
            raise
        return _fail(MissingExtra(f"testbed {args.command} needs the learning extra ({exc.name} is not installed): "
                                  f"{LEARN_INSTALL}"), USAGE_EXIT_STATUS, as_json)  # fmt: skip
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
