"""The radio pump: the one thread that owns a node's radio, keeps its sample clock moving and turns the
receive stream into frames (data and analog frames alike).

Why a thread: a hub radio's receive blocks until every other node has moved its clock past the window
(testbed/radio/air.py), and the control loop must keep answering heartbeats meanwhile. The daemon's event
loop talks to the pump only through two queues: ``submit`` hands it frames to send (back to back as soon as
possible, or inside a TDMA slot of every cycle) and ``set_tx_power`` a transmit power (taken in order with
the jobs: every burst handed to the radio after it goes out at that power), ``events`` returns what happened (frames
received with their start sample, jobs fully on air, the power applied, a radio failure). The radio is
opened, used and closed inside the thread.

Clock: the pump receives ``window_samples`` per pass and paces the clock at ``realtime_factor`` times real
time (it sleeps when ahead, never catches up by skipping), so airtime in simulation matches the lab. On the
unpaced virtual air the daemon instead ``pause``s the clock while a job computes and ``resume``s it with the
job's modelled duration (testbed/node/jobtime.py): the hub serves no node a window past a paused node's
clock, and nothing this node submits afterwards goes out before the paused clock plus that duration, so the
air's clock is the run's virtual time, however long the host took.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from testbed.errors import ConfigError, LinkError, RadioError
from testbed.link.analog import frame_num_samples
from testbed.link.phylink import heard as heard_frame
from testbed.link.phylink import modulate_frame
from testbed.link.placement import BurstPlanner, Job
from testbed.node.actions import Failed, OnAir, RadioEvent, Received, TxPowerSet
from testbed.node.config import AirConfig
from testbed.phy import OfdmModem
from testbed.radio.base import Radio, RxBlock

log = logging.getLogger(__name__)


class FrameStream:
    """Demodulates consecutive blocks as one stream: the last ``carry_samples`` of each buffer are kept so a
    burst cut by a block boundary is decoded whole in the next buffer; frames are reported once (a frame
    starting within ``tolerance_samples`` of the last one reported is the same frame decoded again)."""

    def __init__(self, modem: OfdmModem, carry_samples: int, tolerance_samples: int) -> None:
        self._modem, self._carry, self._tol = modem, carry_samples, tolerance_samples
        self._buf = np.zeros(0, np.complex64)
        self._buf_start = 0
        self._last_start = -(1 << 62)

    def feed(self, block: RxBlock) -> list[Received]:
        """block.iq : (n,) complex64 in full-scale units, contiguous with the previous block."""
        if self._buf.size and self._buf_start + self._buf.size != block.start_sample:
            self._buf = np.zeros(0, np.complex64)  # a gap in the clock: nothing spans it
        if not self._buf.size:
            self._buf_start = block.start_sample
        buf = np.concatenate([self._buf, block.iq])
        heard = []
        for fr in self._modem.demodulate(buf):
            start = self._buf_start + int(fr.start)
            if start <= self._last_start + self._tol:
                continue
            self._last_start = start
            heard.append(Received(start, heard_frame(fr)))
        keep = min(self._carry, buf.size)
        self._buf, self._buf_start = buf[buf.size - keep :], self._buf_start + buf.size - keep
        return heard


@dataclass(frozen=True)
class _Pause:
    pass


@dataclass(frozen=True)
class _Resume:
    samples: int


PAUSE_POLL_S = 0.05  # how often a paused pump looks at its stop flag


class RadioPump:
    """Owns the radio in its own thread; see the module docstring. ``open_radio`` runs in that thread and
    returns a configured radio whose waits end when the event it is given (set by ``stop``) is set;
    ``stream_id`` is the PHY header stream id of this node's frames."""

    def __init__(self, open_radio: Callable[[threading.Event], Radio], air: AirConfig, stream_id: int) -> None:
        self.air, self.stream_id = air, stream_id
        self._open_radio = open_radio
        # a job, the id of one to cancel, a transmit power (dBm) to set, a pause or the end of one
        self._jobs: queue.SimpleQueue[Job | int | float | _Pause | _Resume] = queue.SimpleQueue()
        self._events: queue.SimpleQueue[RadioEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="radio-pump", daemon=True)
        self.cursor = 0  # end of the last received block (read by the daemon loop; an int swap is atomic)

    # --- daemon side ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """True once the radio delivers samples; False on failure, timeout, or when ``stop`` is set."""
        end_s = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if (stop is not None and stop.is_set()) or time.monotonic() >= end_s:
                return False
        return not self._failed

    def submit(self, job: Job) -> None:
        """Plan ``job``'s bursts after everything already planned; each goes to the radio just before the
        receive window it starts in."""
        self._jobs.put(job)

    def cancel(self, job_id: int) -> None:
        """Drop the bursts of ``job_id`` not yet handed to the radio (e.g. its round ended)."""
        self._jobs.put(job_id)

    def set_tx_power(self, tx_power_dbm: float) -> None:
        """Set the radio's transmit power before the bursts handed to it from now on; ``TxPowerSet`` says what
        the radio applied (a power it refuses leaves the old one, logged)."""
        self._jobs.put(float(tx_power_dbm))

    def pause(self) -> None:
        """Hold this node's sample clock where it is until the matching ``resume`` (pauses nest)."""
        self._jobs.put(_Pause())

    def resume(self, samples: int) -> None:
        """End one pause that stood for ``samples`` of air time: what is submitted from now on goes out no
        earlier than the paused clock plus that (successive pauses add up)."""
        self._jobs.put(_Resume(max(int(samples), 0)))

    def events(self) -> list[RadioEvent]:
        """Everything that happened since the last call, in order."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def stop(self, timeout_s: float) -> bool:
        """Ask the thread to finish its pass and close the radio; True if it ended within ``timeout_s``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # --- pump thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        radio: Radio | None = None
        try:
            modem = OfdmModem(self.air.phy)
            # compile the numba kernels now: on a shared air a node that stalls on its first frame stalls all
            modem.demodulate(modem.modulate(bytes(self.air.frame_payload_bytes), self.air.slowest_mcs))
            radio = self._open_radio(self._stop)
            self._loop(radio, modem)
        except (RadioError, ConfigError, LinkError, OSError) as exc:
            if self._stop.is_set():  # stopping: a wait the stop cut short is no failure
                log.info("radio pump stopped: %s", exc)
            else:
                self._fail(str(exc))
        except Exception as exc:  # a thread boundary: any other failure must reach the event loop too
            log.exception("radio pump crashed")
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._ready.set()
            if radio is not None:
                radio.close()

    def _fail(self, reason: str) -> None:
        log.error("radio pump stopped: %s", reason)
        self._failed = True
        self._events.put(Failed(reason))

    def _loop(self, radio: Radio, modem: OfdmModem) -> None:
        air = self.air
        phy = modem.cfg
        stream = FrameStream(modem, air.max_burst_samples + 4 * phy.symbol_len, phy.fft_size)
        planner = BurstPlanner(air.guard_samples, air.tdma_cycle_samples, partial(frame_num_samples, phy))
        rate_sps = air.sample_rate_hz * air.realtime_factor
        c0: int | None = None  # pacing anchor: the first block's start (a late joiner starts mid-clock)
        t0_s = 0.0
        paused, floor = 0, 0  # pauses open; no job placed before ``floor`` (the end of the last pause)
        while not self._stop.is_set():
            while True:
                try:
                    request = self._jobs.get(timeout=PAUSE_POLL_S) if paused else self._jobs.get_nowait()
                except queue.Empty:
                    break
                if isinstance(request, Job):
                    planner.plan(request, max(self.cursor, floor))
                elif isinstance(request, float):
                    self._set_tx_power(radio, request)
                elif isinstance(request, _Pause):
                    paused += 1
                elif isinstance(request, _Resume):
                    paused, floor = max(paused - 1, 0), max(floor, self.cursor) + request.samples
                else:
                    planner.cancel(request)
                if paused and self._stop.is_set():
                    break
            self._transmit_due(radio, modem, planner)
            if paused:
                continue
            if rate_sps > 0 and c0 is not None:
                ahead_s = t0_s + (self.cursor + air.window_samples - c0) / rate_sps - time.monotonic()
                if ahead_s > 0 and self._stop.wait(ahead_s):
                    break
            block = radio.receive(air.window_samples)
            if c0 is None:
                c0, t0_s = block.start_sample, time.monotonic()
            if block.overflow:
                log.warning("receive overflow before sample %d", block.start_sample)
            for heard in stream.feed(block):
                self._events.put(heard)
            self.cursor = block.end_sample
            self._ready.set()  # the clock is known from the first block on: jobs can be placed
            for job_id, end_sample in planner.finished(self.cursor):
                self._events.put(OnAir(job_id, end_sample))

    def _set_tx_power(self, radio: Radio, tx_power_dbm: float) -> None:
        try:
            applied = radio.set_tx_power(tx_power_dbm)
        except ConfigError as exc:  # refused (a hub that does not take it): keep the old power, say so
            log.error("TX power %.2f dBm not applied, keeping %.2f dBm: %s", tx_power_dbm, radio.config.tx_power_dbm,
                      exc)  # fmt: skip
            applied = radio.config.tx_power_dbm
        self._events.put(TxPowerSet(tx_power_dbm, applied))

    def _transmit_due(self, radio: Radio, modem: OfdmModem, planner: BurstPlanner) -> None:
        """Hand the radio every planned burst that starts before the end of the next receive window."""
        for b in planner.due(self.cursor + self.air.window_samples):
            radio.transmit(modulate_frame(modem, b.payload, b.mcs, self.stream_id, b.seq & 0xFFFF), at_sample=b.start)
