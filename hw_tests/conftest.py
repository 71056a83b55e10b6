"""Hardware tests: collected only when a Pluto URI is given (``--uri ip:192.168.2.1`` or ``PLUTO_URI``).

Every test runs its body in a fresh spawned process (``isolated``): libiio contexts, kernel buffers and a
hung USB transfer stay inside that process, and a crash or time-out fails one test, not the session.
See docs/lab-guide.md for the wiring each test expects.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest

ISOLATED_TIMEOUT_S = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hardware")
    group.addoption("--uri", default=os.environ.get("PLUTO_URI"), help="Pluto URI, e.g. ip:192.168.2.1 (or PLUTO_URI)")
    group.addoption(
        "--rf-loopback",
        action="store_true",
        default=os.environ.get("PLUTO_RF_LOOPBACK") == "1",
        help="TX is cabled to RX through >= 30 dB of attenuation (or PLUTO_RF_LOOPBACK=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rf_cable: needs TX cabled to RX through an attenuator (--rf-loopback)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    uri = config.getoption("--uri")
    for item in items:
        if not uri:
            item.add_marker(pytest.mark.skip(reason="no radio URI: pass --uri ip:192.168.2.1 or set PLUTO_URI"))
        elif "rf_cable" in item.keywords and not config.getoption("--rf-loopback"):
            item.add_marker(pytest.mark.skip(reason="needs TX->attenuator->RX cable: pass --rf-loopback"))


@pytest.fixture
def uri(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--uri")


def _child(fn: Callable[..., Any], args: tuple, queue: multiprocessing.Queue) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # sent back to the parent as text; the parent fails the test
        queue.put(("error", f"{exc!r}\n{traceback.format_exc()}"))


def isolated(fn: Callable[..., Any], *args: Any, timeout_s: float = ISOLATED_TIMEOUT_S) -> Any:
    """Run ``fn(*args)`` in a fresh spawned process and return its (picklable) result."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue), daemon=True)
    proc.start()
    try:
        status, value = queue.get(timeout=timeout_s)
    except Exception:
        pytest.fail(f"{fn.__name__} gave no result within {timeout_s:g} s (radio hung?)")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)
    if status != "ok":
        pytest.fail(f"{fn.__name__} failed in its process: {value}")
    return value
