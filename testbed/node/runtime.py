"""What both daemons need around their event loop: structured logs, stop signals, the radio factory and the
radio's lifetime.

Logs are JSON lines on stderr (journald keeps them as they are): ``ts`` (Unix seconds), ``level``,
``node``, ``logger``, ``msg`` and, for events logged through :func:`event`, their fields.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from testbed.link.endpoints import RepairTiming
from testbed.node.config import AirConfig, RadioSection
from testbed.node.sdnotify import Notifier
from testbed.radio.base import Radio, RadioConfig

if TYPE_CHECKING:
    from testbed.node.pump import RadioPump

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0  # longest wait for the radio to open (the hub may still be starting)


def repair_timing(air: AirConfig, gather_s: float = 0.0) -> RepairTiming:
    """The link endpoints' timers for this air: NACK after ``air.quiet_samples``, ``air.max_passes`` passes;
    ``gather_s``: how long a sender collects NACKs (the BS's broadcast; one receiver needs none)."""
    return RepairTiming(air.quiet_samples, air.sample_rate_hz, air.max_passes, gather_s)


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "node": self.node,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(node: str, verbose: int) -> None:
    """Route every log record to stderr as JSON lines (replaces the CLI's plain handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(node))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def event(log: logging.Logger, name: str, **fields: Any) -> None:
    """Log a named event with structured fields (at INFO)."""
    log.info(name, extra={"fields": {"event": name, **fields}})


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the daemon finishes its pass, says BYE and exits 0."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def virtual_clock(section: RadioSection, air: AirConfig) -> bool:
    """Whether this node's air is the hub's unpaced virtual air, whose clock a job may hold
    (testbed/node/jobtime.py); a Pluto's air, or a paced hub's, runs in real time."""
    return section.kind == "hub" and air.realtime_factor == 0


def radio_factory(section: RadioSection, air: AirConfig) -> Callable[[threading.Event], Radio]:
    """A callable that opens and configures this node's radio (run inside the radio pump's thread); the event
    it is given ends the radio's waits when set (the daemon is stopping)."""
    config = RadioConfig(
        center_freq_hz=air.center_freq_hz,
        sample_rate_hz=air.sample_rate_hz,
        tx_power_dbm=section.tx_power_dbm,
        rx_gain_mode=section.rx_gain_mode,
        rx_gain_db=section.rx_gain_db,
    )

    def open_radio(cancel: threading.Event) -> Radio:
        radio: Radio
        if section.kind == "pluto":
            from testbed.radio.calibration import load_calibration
            from testbed.radio.pluto import PlutoRadio

            calibration = load_calibration(section.calibration_file) if section.calibration_file else None
            radio = PlutoRadio(section.uri, calibration=calibration)
        else:
            from testbed.radio.hub_client import HubRadio

            radio = HubRadio(section.endpoint, section.node, timeout_s=section.timeout_s, cancel=cancel)
        try:
            radio.configure(config)
        except BaseException:
            radio.close()
            raise
        return radio

    return open_radio


@contextmanager
def radio_running(
    pump: RadioPump, stop: threading.Event, notifier: Notifier, timeout_s: float, stopped: Callable[[bool], None]
) -> Iterator[bool]:
    """Run the radio pump for the body of the ``with`` and yield whether the radio came up.

    A daemon opens its control endpoint only inside, once the radio can hear, so peers never see a node that
    cannot take part. On the way out (return, error or signal) systemd hears STOPPING, the pump closes the
    radio, and ``stopped(radio_closed)`` records the outcome.
    """
    try:
        pump.start()
        ready = pump.wait_ready(READY_TIMEOUT_S, stop)
        if not ready and not stop.is_set():
            log.error("radio not ready: it failed (see above) or gave no samples within %.0f s", READY_TIMEOUT_S)
        yield ready
    finally:
        notifier.stopping()
        stopped(pump.stop(timeout_s=timeout_s))
