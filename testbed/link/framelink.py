"""The frame-level interface the ARQ engine talks to, the on-air log, and a DSP-free model of it.

A ``FrameLink`` takes the frames of one window (who sends which payload at which sample, with which MCS)
and returns what each receiver decoded. Two implementations: ``PhyFrameLink`` (testbed/link/phylink.py:
the OFDM modem over a sample-level medium) and ``ModelFrameLink`` here, which charges the exact burst
lengths of testbed/phy/layout.py but decides reception by a seeded coin per frame and receiver: a fixed loss
probability (for testing ARQ logic), or the PHY abstraction's PER at the link's SNR (testbed/link/abstraction.py:
the AWGN table measured with the real receiver, EESM for per-subcarrier SNRs), the calibrated fast medium.

Analog frames (testbed/link/analog.py: MCS ``ANALOG_MCS``, a complex array as payload) cross both: the
receiver reports the equalized values and their noise variance. In ``ModelFrameLink`` value k of every OFDM
symbol gets complex Gaussian noise of variance 1/snr_k of its data subcarrier (what zero-forcing leaves on
the phy medium), drawn in one vectorised call from a generator seeded by the link and the frame's values
(``analog_seed``); a frame is lost on a collision, the ``loss`` coin, or the PER
of the shortest tabulated bpsk-1/2 frame (its header is a BPSK 1/2 code word of that order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from testbed.errors import LinkError
from testbed.link.abstraction import PerTable
from testbed.link.analog import ANALOG_MCS, HEADER_BYTES, HEADER_MCS, frame_num_samples
from testbed.phy.numerology import PhyConfig


@dataclass(frozen=True)
class TxFrame:
    """One frame to put on air: ``payload`` from node ``src`` at ``start_sample`` of the window.

    payload : bytes, or for an analog frame (``mcs`` ANALOG_MCS) the ``(n,) complex64`` values to carry.
    stream_id, seq : PHY header fields (8 and 16 bits); the link sets the sender's id and the frame number.
    tx_gain_db : the sender's transmit power above (below, if negative) the power its link's SNR is quoted at
        (the allocation's TX power applied): the model medium shifts the link's SNR by it, the phy medium
        scales the burst's amplitude.
    """

    src: int
    start_sample: int
    payload: bytes | np.ndarray
    mcs: str
    stream_id: int = 0
    seq: int = 0
    tx_gain_db: float = 0.0


@dataclass(frozen=True)
class Heard:
    """One frame a receiver detected.

    payload : bytes if the PHY CRC passed, else None (always None for an analog frame). stream_id, seq : from
    the PHY header (CRC-16 protected). snr_db : Es/N0 per subcarrier. cfo_hz : estimated carrier offset.
    channel : (n_used,) complex64 estimate or None. symbols : an analog frame's (n,) complex64 equalized values
    at the unit-power scale they were sent at (None for data frames); noise_var : the receiver's estimate of
    their mean noise variance.
    """

    payload: bytes | None
    stream_id: int
    mcs: str | None
    snr_db: float
    cfo_hz: float
    channel: np.ndarray | None = None
    symbols: np.ndarray | None = None
    noise_var: float | None = None
    seq: int = 0

    @property
    def analog(self) -> bool:
        return self.symbols is not None


@dataclass(frozen=True)
class Window:
    """What one window delivered: frames heard per receiver, and its length on the medium's clock."""

    heard: dict[int, list[Heard]]
    window_samples: int


class FrameLink(Protocol):
    """Moves the frames of one window to a set of receivers."""

    @property
    def phy(self) -> PhyConfig: ...

    @property
    def air_log(self) -> AirLog: ...

    def burst_num_samples(self, payload_bytes: int, mcs: str) -> int:
        """Exact samples one frame of ``payload_bytes`` occupies on air (complex values for ANALOG_MCS)."""
        ...

    def exchange(self, frames: Sequence[TxFrame], receivers: Sequence[int], window_samples: int) -> Window:
        """Send ``frames`` (start samples relative to the window) and return what each receiver decoded."""
        ...


@dataclass
class AirLog:
    """Exact record of everything put on air: (src, absolute start sample, length) per burst."""

    bursts: list[tuple[int, int, int]] = field(default_factory=list)
    clock_samples: int = 0  # start of the next window on the medium's clock

    def record_window(self, spans: Sequence[tuple[int, int, int]], window_samples: int) -> None:
        """Log a window's bursts (src, start within the window, length), checking they fit, and advance."""
        for src, start, n in spans:
            if start < 0 or start + n > window_samples:
                raise LinkError(
                    f"node {src}: burst at {start}..{start + n} leaves the {window_samples}-sample window; "
                    "the schedule must cover every burst"
                )
            self.bursts.append((src, self.clock_samples + start, n))
        self.clock_samples += window_samples

    @property
    def samples_on_air(self) -> int:
        return sum(n for _, _, n in self.bursts)

    def overlaps(self) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
        """Pairs of bursts that overlap in time (none when every sender keeps to its slot)."""
        spans = sorted(self.bursts, key=lambda b: b[1])
        found, latest = [], None  # latest: the burst reaching furthest so far
        for b in spans:
            if latest is not None and b[1] < latest[1] + latest[2]:
                found.append((latest, b))
            if latest is None or b[1] + b[2] > latest[1] + latest[2]:
                latest = b
        return found


def _collided(spans: list[tuple[int, int]]) -> np.ndarray:
    """(n,) bool: which of the (start, length) spans overlap another span."""
    hit = np.zeros(len(spans), dtype=bool)
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    for a, b in zip(order, order[1:], strict=False):
        if spans[b][0] < spans[a][0] + spans[a][1]:
            hit[a] = hit[b] = True
    return hit


@dataclass
class ModelFrameLink:
    """Frame-level model: exact airtime, each frame lost at each receiver with a seeded probability.

    phy : numerology (burst lengths come from testbed/phy/layout.py).
    rng : decides losses. loss : probability a frame is lost at a receiver (one number, or per (src, dst)).
    snr_db : Es/N0 per data subcarrier of each link, per (src, dst) or one number for all; receivers report it.
    per_table : if given, a frame is also lost with the table's PER for its MCS and length at the link's SNR
        (independently of ``loss``): at ``snr_db``, or, for a link in ``subcarrier_snr``, at the EESM
        effective SNR of its (n_data,) linear per-subcarrier SNRs (then the reported SNR is their mean, and the
        receiver's channel estimate is their shape, sqrt(SNR_k / mean SNR), as a real receiver would report it).
    Overlapping bursts at a receiver (a broken schedule) destroy each other.
    analog_seed : seeds the noise of analog frames, drawn per frame from (seed, link, the frame's values) rather
        than from ``rng``, so a frame's noise does not depend on when it was sent or what else was on air (two
        runs that send the same symbols, e.g. with and without a resource allocation, see the same noise).
    """

    phy: PhyConfig
    rng: np.random.Generator
    loss: float | Mapping[tuple[int, int], float] = 0.0
    snr_db: float | Mapping[tuple[int, int], float] = 30.0
    per_table: PerTable | None = None
    subcarrier_snr: Mapping[tuple[int, int], np.ndarray] = field(default_factory=dict)
    analog_seed: int = 0
    air_log: AirLog = field(default_factory=AirLog)
    _per_cache: dict[tuple[int, int, str, int, float], float] = field(default_factory=dict, init=False, repr=False)
    _shape_cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def burst_num_samples(self, payload_bytes: int, mcs: str) -> int:
        return frame_num_samples(self.phy, payload_bytes, mcs)

    def _per_link(self, value: float | Mapping[tuple[int, int], float], src: int, dst: int) -> float:
        return float(value) if not isinstance(value, Mapping) else float(value.get((src, dst), 0.0))

    def _channel(self, frame: TxFrame, dst: int) -> tuple[float, float]:
        """(reported SNR in dB, the abstraction's PER, 0 without a table) of ``frame`` at receiver ``dst``."""
        sub = self.subcarrier_snr.get((frame.src, dst))
        if sub is not None:
            sub = sub * 10.0 ** (frame.tx_gain_db / 10.0)
            snr = float(10.0 * np.log10(np.mean(sub)))
        else:
            snr = self._per_link(self.snr_db, frame.src, dst) + frame.tx_gain_db
        if self.per_table is None:
            return snr, 0.0
        mcs, size = (HEADER_MCS, HEADER_BYTES) if frame.mcs == ANALOG_MCS else (frame.mcs, len(frame.payload))
        key = (frame.src, dst, mcs, size, frame.tx_gain_db)  # a link's channel is fixed
        per = self._per_cache.get(key)
        if per is None:
            if sub is not None:
                per = self.per_table.frame_error_rate_on_channel(mcs, size, sub)
            else:
                per = self.per_table.frame_error_rate(mcs, size, snr)
            self._per_cache[key] = per
        return snr, per

    def _shape(self, src: int, dst: int) -> np.ndarray | None:
        """The channel estimate a receiver reports for a frequency-selective link (None for a flat one)."""
        sub = self.subcarrier_snr.get((src, dst))
        if sub is None:
            return None
        shape = self._shape_cache.get((src, dst))
        if shape is None:
            shape = self._shape_cache[(src, dst)] = np.sqrt(sub / np.mean(sub)).astype(np.complex64)
        return shape

    def _analog(self, frame: TxFrame, dst: int, snr_db: float) -> Heard:
        """What a receiver makes of an analog frame: the values at unit mean power plus zero-forcing noise,
        value i on data subcarrier i mod n_data at that subcarrier's SNR (the link's SNR if it is flat)."""
        x = np.asarray(frame.payload, np.complex64)
        x = x / np.float32(np.sqrt(np.mean(np.abs(x.astype(np.complex128)) ** 2)))  # as the transmitter scales
        sub = self.subcarrier_snr.get((frame.src, dst))
        n_data = self.phy.num_data
        if sub is None:
            var = np.full(x.size, 10.0 ** (-snr_db / 10.0))
        else:  # (n,) noise variance per value, the subcarriers repeating every OFDM symbol
            if len(sub) != n_data:
                raise LinkError(f"subcarrier_snr of link {frame.src}->{dst} has {len(sub)} values, not {n_data}")
            gain = 10.0 ** (frame.tx_gain_db / 10.0)  # the sender's applied power against its link's reference
            var = np.resize(1.0 / np.maximum(gain * np.asarray(sub, np.float64), 1e-30), x.size)
        digest = hashlib.blake2b(x.tobytes(), digest_size=16).digest()
        noise = np.random.default_rng([self.analog_seed, frame.src, dst, *np.frombuffer(digest, np.uint64).tolist()])
        z = noise.standard_normal((2, x.size)) * np.sqrt(var / 2.0)
        y = (x + (z[0] + 1j * z[1])).astype(np.complex64)
        return Heard(None, frame.stream_id, ANALOG_MCS, snr_db, 0.0, symbols=y, noise_var=float(np.mean(var)),
                     seq=frame.seq)  # fmt: skip

    def exchange(self, frames: Sequence[TxFrame], receivers: Sequence[int], window_samples: int) -> Window:
        lengths = [self.burst_num_samples(len(f.payload), f.mcs) for f in frames]
        self.air_log.record_window([(f.src, f.start_sample, n) for f, n in zip(frames, lengths, strict=True)],
                                   window_samples)  # fmt: skip
        heard: dict[int, list[Heard]] = {}
        for rx in receivers:
            idx = [i for i, f in enumerate(frames) if f.src != rx]
            collided = _collided([(frames[i].start_sample, lengths[i]) for i in idx])
            out = []
            for i, hit in zip(idx, collided, strict=True):
                f = frames[i]
                snr, per = self._channel(f, rx)
                p_lost = self._per_link(self.loss, f.src, rx)
                p_lost = p_lost if per == 0.0 else 1.0 - (1.0 - p_lost) * (1.0 - per)
                lost = hit or self.rng.random() < p_lost
                if f.mcs == ANALOG_MCS:  # a lost analog frame is not detected at all: its header failed
                    if not lost:
                        out.append(self._analog(f, rx, snr))
                    continue
                out.append(Heard(None if lost else f.payload, f.stream_id, f.mcs, snr, 0.0, self._shape(f.src, rx),
                                 seq=f.seq))  # fmt: skip
            heard[rx] = out
        return Window(heard, window_samples)
