"""Shared output rules for every command that reports figures.

With ``--json`` a command prints exactly one JSON object on stdout; progress and logs go to stderr.
Non-finite floats become ``null`` so the output is strict JSON that any tool can parse. Progress is a bar only
when stderr is a terminal; redirected to a file or a journal it is a plain line at most every
``PLAIN_INTERVAL_S`` and one at the end, never carriage returns.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
PLAIN_INTERVAL_S = 10.0


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add the standard ``--json`` flag."""
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout (logs stay on stderr)"
    )


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into strict-JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(result: dict[str, Any], *, as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    """Print ``result`` as one JSON object (``as_json``) or as the human-readable text ``human`` makes."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result), allow_nan=False) + "\n")
    else:
        sys.stdout.write(human(result).rstrip("\n") + "\n")
    sys.stdout.flush()


class Progress:
    """Progress of a long command on stderr: a tqdm bar on a terminal, else plain lines (the first update, then
    at most one per ``interval_s``, and a last one on close) that a log file or journal can hold."""

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        *,
        unit: str = "it",
        stream: TextIO | None = None,
        interval_s: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc, self.total, self.unit, self.done = desc, total, unit, 0
        self._stream = sys.stderr if stream is None else stream
        self._interval_s, self._clock = interval_s, clock
        self._start_s = clock()
        self._next_s = -math.inf
        self._shown = -1
        isatty = getattr(self._stream, "isatty", None)
        self._bar = (
            tqdm(desc=desc, total=total, unit=unit, file=self._stream, leave=False, dynamic_ncols=True)
            if isatty is not None and isatty()
            else None
        )

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now >= self._next_s:
            self._next_s = now + self._interval_s
            self._line()

    def note(self, text: str) -> None:
        """A line about a stage or a partial result, above the bar (or among the plain lines)."""
        if self._bar is not None:
            self._bar.write(f"{self.desc}: {text}", file=self._stream)
        else:
            self._stream.write(f"{self.desc}: {text}\n")
            self._stream.flush()

    def _line(self, final: bool = False) -> None:
        self._shown = self.done
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        end = " done" if final else ""
        elapsed = self._clock() - self._start_s
        self._stream.write(f"{self.desc}: {self.done}{of} {self.unit}{pct}{end}, {elapsed:.1f} s\n")
        self._stream.flush()

    def close(self) -> None:
        """End the bar, or write the last plain line (unless nothing happened since the previous one)."""
        if self._bar is not None:
            self._bar.close()
        elif self.done and self.done != self._shown:
            self._line(final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``items`` with a :class:`Progress` on stderr (never stdout, which belongs to the result)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, total, unit=unit) as bar:
        for item in items:
            yield item
            bar.update()


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """Plain aligned text table; floats get 2 decimals, None shows as '-'."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in text_rows]
    return "\n".join(lines)
