"""The virtual Plutos' shared air: the hub's ``Air`` (per-link path loss, fading, crystal offsets, noise,
overlapping bursts add) driven by libiio buffers instead of hub messages, thread-safe.

Time model (on top of testbed.radio.air): a board's clock is its RX sample count. A board is on the air while
a client holds a connection to it. With an RX buffer its clock moves only as its client reads (``READBUF``),
so a run repeats sample for sample; with only a TX buffer the board is *free-running*: it is moved forward
whenever another board waits for it (its receiver's samples are discarded, as a Pluto drops them with no
buffer open); with no buffer yet (being configured) it holds the others for up to ``SETUP_S``, then runs
free. A TX buffer leaves at the board's clock, or right after its previous buffer; a cyclic buffer repeats
until closed. A reader that holds the others up for ``stall_s`` of wall time overflows: its clock jumps,
samples are lost and the ADC core's overflow bit latches. With ``realtime`` the clocks follow the wall clock
and a late reader overflows as on hardware. A non-cyclic TX buffer that runs dry latches the DAC core's
underflow bit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import msgspec
import numpy as np

from testbed.emu.pluto_model import RX_OVERFLOW_BIT, RXDEV, TX_UNDERFLOW_BIT, TXDEV, PlutoModel
from testbed.errors import RadioError
from testbed.radio.air import AGC_NOISE_DBFS, Air
from testbed.radio.base import RxBlock
from testbed.radio.calibration import NOMINAL_POWER_AT_0DB_DBM
from testbed.radio.pluto import RX_FULL_SCALE, TX_NOMINAL
from testbed.radio.scenario import Scenario

log = logging.getLogger(__name__)

STALL_S = 2.0  # a reader that keeps the others waiting this long (wall clock) overflows
SETUP_S = 10.0  # a connected board with no buffer yet (being configured) holds the others at most this long
TX_BACKLOG_SAMPLES = 1 << 23  # queued TX beyond a board's clock before a write blocks (64 MiB per link)
POLL_S = 0.05


@dataclass
class _Board:
    model: PlutoModel
    rx_open: bool = False
    tx_open: bool = False
    cyclic: np.ndarray | None = None  # unit-power wave repeated while the cyclic buffer is open
    cyclic_power_dbm: float = 0.0
    cyclic_end: int = 0
    tx_end: int = 0  # where the next non-cyclic buffer may start
    underflow_armed: bool = False
    window_end: int | None = None  # end of the window requested from the air, until served
    auto: bool = False  # the pending window is a free-run advance, discarded when served
    queued: list[tuple[np.ndarray, float]] = field(default_factory=list)  # TX pushed while a window was pending
    looped: list[tuple[int, np.ndarray]] = field(default_factory=list)  # digital loopback: (start, int16 words)
    cabled: list[tuple[int, np.ndarray, float]] = field(default_factory=list)  # own bursts: (start, iq, dBm)
    drop_samples: int = 0  # injected overflow: samples to lose before the next read
    waited_since: float | None = None  # wall time since when others wait on this board
    lost_samples: int = 0

    connections: int = 0
    rx_fresh: bool = False  # RX buffer just opened: with real-time pacing, jump to now without an overflow
    stalled: bool = False  # held the others past stall_s; free-running until it reads again

    @property
    def live(self) -> bool:
        return self.connections > 0


class SharedAir:
    """Every virtual Pluto of a scenario on one ``Air``; ``add`` a board per node, then drive it from its
    connections (``connect``, ``buffer``, ``receive``, ``transmit``)."""

    def __init__(
        self, scenario: Scenario, workers: int = 1, realtime: bool = False, stall_s: float = STALL_S,
        rf_cable_db: float | None = None,
    ) -> None:  # fmt: skip
        """rf_cable_db : every board's TX also reaches its own RX through a cable of this loss (the lab
        guide's TX -> attenuator -> RX wiring; same crystal, so no carrier or clock offset); None: no cable."""
        self.rf_cable_db = rf_cable_db
        self.scenario = msgspec.structs.replace(scenario, wait_for_all_nodes=False)  # idle boards hold no clock
        self.air = Air(self.scenario, workers=workers)
        self.realtime, self.stall_s = realtime, stall_s
        self._cond = threading.Condition()
        self._boards: dict[str, _Board] = {}
        self._t0: float | None = None
        self._agc_gain_db = AGC_NOISE_DBFS - (scenario.noise_floor_dbm - scenario.rx_full_scale_dbm)

    def add(self, node_id: str, serial: str) -> PlutoModel:
        """A board for scenario node ``node_id``; its drivers tell the air when gains or powers change."""
        self.scenario.node(node_id)  # ConfigError for an id the scenario lacks
        model = PlutoModel(serial, on_change=lambda: self.settings_changed(node_id))
        model.agc_gain_db = lambda: self._agc_gain_db
        self._boards[node_id] = _Board(model)
        return model

    # --- connections and buffers -------------------------------------------------------------------------
    def connect(self, node_id: str) -> None:
        """A client connection to the board opened: the board is on the air while any is open."""
        with self._cond:
            board = self._boards[node_id]
            if not any(b.live for b in self._boards.values()):
                self._t0 = time.monotonic()  # a session starts: the real-time clock's origin
            board.connections += 1
            if board.connections == 1:
                board.tx_end = self.air.join(node_id)
                board.looped.clear()
                board.waited_since = None
                self._apply_settings(node_id)
            self._cond.notify_all()

    def disconnect(self, node_id: str) -> None:
        with self._cond:
            board = self._boards[node_id]
            board.connections -= 1
            if board.connections == 0:
                board.rx_open = board.tx_open = False
                board.cyclic, board.underflow_armed = None, False
                board.auto, board.queued, board.window_end = False, [], None
                self.air.leave(node_id)
            self._cond.notify_all()

    def buffer(self, node_id: str, rx: bool, is_open: bool) -> None:
        """An RX (``rx``) or TX buffer of the board was opened or closed; closing TX ends a cyclic wave."""
        with self._cond:
            board = self._boards[node_id]
            if rx:
                board.rx_open, board.rx_fresh = is_open, is_open
            else:
                board.tx_open, board.underflow_armed = is_open, False
                board.cyclic = board.cyclic if is_open else None
            self._cond.notify_all()

    def settings_changed(self, node_id: str) -> None:
        with self._cond:
            if self._boards[node_id].live:
                self._apply_settings(node_id)

    def _apply_settings(self, node_id: str) -> None:
        s = self._boards[node_id].model.s
        if self.air.is_live(node_id):
            self.air.set_radio(node_id, self._tx_power_dbm(node_id), s.gain_mode, float(s.rx_gain_db))

    def _tx_power_dbm(self, node_id: str) -> float:
        """A unit-power wave at 2^14 amplitude and 0 dB TX gain gives the nominal calibration's power."""
        return NOMINAL_POWER_AT_0DB_DBM + self._boards[node_id].model.s.tx_gain_db

    def _on_channel(self, node_id: str, lo_hz: int) -> bool:
        s = self._boards[node_id].model.s
        return (
            abs(lo_hz - self.scenario.center_freq_hz) < 1.0
            and abs(s.sample_rate_hz - self.scenario.sample_rate_hz) < 1.0
        )

    # --- samples ----------------------------------------------------------------------------------------
    def transmit(self, node_id: str, words: np.ndarray, cyclic: bool) -> None:
        """words : (2n,) int16 interleaved I/Q as the client wrote them (the DAC keeps the top 12 bits)."""
        iq = ((words[0::2] >> 4 << 4) + 1j * (words[1::2] >> 4 << 4)).astype(np.complex64) / np.float32(TX_NOMINAL)
        with self._cond:
            board = self._boards[node_id]
            power = self._tx_power_dbm(node_id)
            if board.model.s.loopback == 1:
                start = max(self.air.cursor(node_id), board.tx_end)
                board.looped.append((start, words.copy()))
                board.tx_end = start + iq.size
                return
            if not self._on_channel(node_id, board.model.s.tx_lo_hz):
                log.warning("virtual Pluto %s transmits off the scenario's carrier/rate: nobody hears it", node_id)
                return
            if cyclic:
                board.cyclic, board.cyclic_power_dbm = iq, power
                board.cyclic_end = max(self.air.cursor(node_id) + self._pending(node_id), board.tx_end)
                return
            while board.tx_end - self.air.cursor(node_id) > TX_BACKLOG_SAMPLES:
                self._unblock(board.tx_end - TX_BACKLOG_SAMPLES, node_id)
                self._cond.wait(POLL_S)
            if self._pending(node_id):
                board.queued.append((iq, power))
            else:
                self._send(node_id, iq, power)
            self._cond.notify_all()

    def _pending(self, node_id: str) -> int:
        end = self._boards[node_id].window_end
        return 0 if end is None else end - self.air.cursor(node_id)

    def _request(self, node_id: str, num_samples: int) -> None:
        self.air.request(node_id, num_samples)
        self._boards[node_id].window_end = self.air.cursor(node_id) + num_samples

    def _send(self, node_id: str, iq: np.ndarray, power_dbm: float) -> None:
        board = self._boards[node_id]
        start = max(self.air.cursor(node_id), board.tx_end)
        s = board.model.s
        self.air.set_radio(node_id, power_dbm, s.gain_mode, float(s.rx_gain_db))
        self.air.transmit(node_id, iq, start)
        board.tx_end, board.underflow_armed = start + iq.size, True
        if self.rf_cable_db is not None:
            board.cabled.append((start, iq, power_dbm))

    def _add_cable(self, node_id: str, block: RxBlock) -> None:
        """Add the board's own bursts, through the cable and its RX gain, to the window it just received."""
        board = self._boards[node_id]
        s = board.model.s
        gain_db = float(s.rx_gain_db) if s.gain_mode == "manual" else self._agc_gain_db
        start, end = block.start_sample, block.end_sample
        for begin, iq, power_dbm in board.cabled:
            lo, hi = max(begin, start), min(begin + iq.size, end)
            if lo < hi:
                db = power_dbm - self.rf_cable_db - self.scenario.rx_full_scale_dbm + gain_db
                block.iq[lo - start : hi - start] += iq[lo - begin : hi - begin] * np.float32(10.0 ** (db / 20.0))
        board.cabled = [(b, iq, p) for b, iq, p in board.cabled if b + iq.size > end]

    def _extend_cyclic(self, node_id: str, end: int) -> None:
        """Put the cyclic wave's repetitions on the air up to ``end`` (before the board's commit passes it)."""
        board = self._boards[node_id]
        while board.cyclic is not None and board.cyclic_end < end:
            saved, board.tx_end = board.tx_end, board.cyclic_end
            self._send(node_id, board.cyclic, board.cyclic_power_dbm)
            board.cyclic_end, board.tx_end, board.underflow_armed = board.tx_end, saved, False

    def receive(self, node_id: str, num_samples: int) -> tuple[np.ndarray, bool]:
        """(2n,) int16 interleaved I/Q in 12-bit ADC codes and whether samples were lost before them."""
        with self._cond:
            board = self._boards[node_id]
            while board.auto or self._pending(node_id):
                self._cond.wait(POLL_S)
            lost = self._lose_pending_samples(node_id, num_samples)
            self._extend_cyclic(node_id, self.air.cursor(node_id) + num_samples)
            self._request(node_id, num_samples)
            self._cond.notify_all()
            while not self.air.ready(node_id):
                self._unblock(self.air.cursor(node_id) + num_samples, node_id)
                if self.air.ready(node_id):
                    break
                self._cond.wait(POLL_S)
            block = self._collect(node_id)
            if board.cabled:
                self._add_cable(node_id, block)
            board.waited_since, board.stalled = None, False
            self._cond.notify_all()
        if self.realtime:
            self._pace(block.end_sample)
        return self._adc(node_id, block.iq, block.start_sample), lost

    def _lose_pending_samples(self, node_id: str, num_samples: int) -> bool:
        """Injected overflows and, with real-time pacing, a reader late by more than its kernel buffers."""
        board = self._boards[node_id]
        drop, injected = board.drop_samples, board.drop_samples
        board.drop_samples = 0
        if self.realtime and self._t0 is not None:
            now = int((time.monotonic() - self._t0) * self.scenario.sample_rate_hz)
            late = now - self.air.cursor(node_id) - board.model.s.kernel_buffers * num_samples
            drop = max(drop, late)
        fresh, board.rx_fresh = board.rx_fresh, False
        if drop <= 0:
            return False
        self._advance(node_id, drop)
        if fresh and not injected:  # samples from before the buffer existed were never captured
            return False
        board.lost_samples += drop
        board.model.raise_flag(RXDEV, RX_OVERFLOW_BIT)
        return True

    def _advance(self, node_id: str, num_samples: int) -> None:
        """Move a board's clock without a reader (blocks until the others allow it)."""
        self._extend_cyclic(node_id, self.air.cursor(node_id) + num_samples)
        self._request(node_id, num_samples)
        while not self.air.ready(node_id):
            self._unblock(self.air.cursor(node_id) + num_samples, node_id)
            if self.air.ready(node_id):
                break
            self._cond.wait(POLL_S)
        self._collect(node_id)

    def _unblock(self, end: int, waiter: str) -> None:
        """Move free-running boards (and readers stalled past ``stall_s``) up to ``end`` so ``waiter`` can go on."""
        if not self._boards[waiter].live:
            raise RadioError(f"virtual Pluto {waiter}: the buffer was closed while waiting for samples")
        now = time.monotonic()
        movers = []
        for nid, board in self._boards.items():
            if nid == waiter or not board.live or self._pending(nid):
                if board.auto and self.air.ready(nid):
                    movers.append(nid)
                continue
            cursor = self.air.cursor(nid)
            if cursor >= end:
                continue
            if board.rx_open or not board.tx_open:  # a reader, or a board still being set up, holds the clock
                board.waited_since = board.waited_since or now
                if now - board.waited_since < (self.stall_s if board.rx_open else SETUP_S):
                    continue
                if board.rx_open:
                    if not board.stalled:
                        log.warning("virtual Pluto %s: no read for %.1f s while others wait: RX overflow", nid,
                                    self.stall_s)  # fmt: skip
                    board.model.raise_flag(RXDEV, RX_OVERFLOW_BIT)
                    board.lost_samples += end - cursor
                board.stalled = True
            self._extend_cyclic(nid, end)
            self._request(nid, end - cursor)
            board.auto = True
            movers.append(nid)
        for nid in movers:
            if self.air.ready(nid):
                self._collect(nid)
                self._boards[nid].auto = False
                self._cond.notify_all()

    def _collect(self, node_id: str) -> RxBlock:
        board = self._boards[node_id]
        block = self.air.collect(node_id)
        board.auto, board.window_end = False, None
        for iq, power in board.queued:
            self._send(node_id, iq, power)
        board.queued.clear()
        if board.underflow_armed and board.cyclic is None and block.end_sample > board.tx_end:
            board.model.raise_flag(TXDEV, TX_UNDERFLOW_BIT)
            board.underflow_armed = False
        return block

    def _pace(self, end_sample: int) -> None:
        if self._t0 is not None:
            delay = self._t0 + end_sample / self.scenario.sample_rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _adc(self, node_id: str, iq: np.ndarray, start: int) -> np.ndarray:
        """Gain already applied by the air; 12-bit quantisation with saturation; digital loopback replaces it."""
        board = self._boards[node_id]
        s = board.model.s
        out = np.empty(2 * iq.size, np.int16)
        if s.loopback == 1:
            out[:] = 0
            for begin, words in board.looped:
                lo, hi = max(begin, start), min(begin + words.size // 2, start + iq.size)
                if lo < hi:
                    out[2 * (lo - start) : 2 * (hi - start)] = words[2 * (lo - begin) : 2 * (hi - begin)] >> 4
            board.looped = [(b, w) for b, w in board.looped if b + w.size // 2 > start + iq.size]
            return out
        if not self._on_channel(node_id, s.rx_lo_hz):
            out[:] = 0
            return out
        scaled = iq.astype(np.complex64, copy=False).view(np.float32) * np.float32(RX_FULL_SCALE)  # (2n,) I, Q
        np.rint(scaled, out=scaled)
        np.clip(scaled, -RX_FULL_SCALE, RX_FULL_SCALE - 1, out=scaled)
        out[:] = scaled
        return out

    # --- faults -----------------------------------------------------------------------------------------
    def inject_overflow(self, node_id: str, lost_samples: int) -> None:
        """The next read of ``node_id`` comes after ``lost_samples`` samples were lost (overflow bit set)."""
        with self._cond:
            self._boards[node_id].drop_samples += int(lost_samples)

    def transmitting(self, node_id: str) -> bool:
        """True while the board has a TX buffer open (for tests and status)."""
        return self._boards[node_id].tx_open

    def inject_underflow(self, node_id: str) -> None:
        with self._cond:
            self._boards[node_id].model.raise_flag(TXDEV, TX_UNDERFLOW_BIT)

    def lost_samples(self, node_id: str) -> int:
        return self._boards[node_id].lost_samples

    def close(self) -> None:
        self.air.close()
