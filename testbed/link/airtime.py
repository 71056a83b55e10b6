"""The one airtime and MCS model: which MCS a link uses, and what a transfer costs on the shared medium.

Used by the engine's virtual clock (it implements ``testbed.learning.clock.Airtime``), the policy (MCS per TX
power, airtime per UE) and the daemons (the BS's MCS choice, its virtual clock, the UE's energy account).

- Frame errors come from an ``ErrorModel`` plug-in (``frame_error_rate``, ``snr_db_at_per``); callers use only
  those two methods. ``default_errors()`` is the one every caller gets: the PER table measured with this
  project's receiver (testbed/link/abstraction.py ``PerTable``; AWGN-equivalent SNR, EESM for a channel).
- A link is its mean SNR plus, for a frequency-selective channel, ``gain``: (n_data,) |H_k|^2 per data
  subcarrier, mean 1 (``channel_gain``). With a gain, the MCS choice and the frame errors use the EESM effective
  SNR at each candidate MCS (``ErrorModel.effective_snr_db``, beta per MCS and frame length: the chooser at
  ``frame_payload_bytes``, a transfer's last, shorter frame at its own length); without one (flat) the mean SNR
  is used as is.
- MCS: ranked by information bits per data subcarrier; a coded MCS is usable on a link when its SNR for 10%
  PER on frames of the link's size (``snr_db_at_per(mcs, 0.1, frame_payload_bytes)``) plus ``MCS_MARGIN_DB``
  is at most the link's (effective) SNR. The fastest usable one is chosen; none usable, or no SNR measured: the most
  robust (bpsk-1/2). ``McsPolicy`` is that chooser (docs/link.md, "MCS").
- A digital transfer is cut into frames of ``frame_payload_bytes``; each frame costs 1/(1-PER) transmissions
  on average (selective-repeat ARQ repeats a lost frame until it arrives). A broadcast goes at the slowest MCS
  its receivers' chooser picks and is charged at its worst receiver (lowest effective SNR at that MCS).
  Analog frames (semantic symbols, ``analog_frame_symbols`` per frame) are sent once.
- Burst lengths are exact (testbed/phy/layout.py). The medium is the daemons' TDMA cycle
  (testbed/link/tdma.py ``cycle_schedule``): a node sends only in its own slot, as many bursts as fit, so a
  transfer takes whole cycles (``elapsed_s``) while its sender's radio is on for its bursts only (``on_air_s``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from testbed.errors import ConfigError, LinkError
from testbed.link.abstraction import NUMEROLOGY_FIELDS, load_per_table, subcarrier_snr
from testbed.link.tdma import cycle_schedule, frames_per_slot
from testbed.phy.layout import MAX_ANALOG_SYMBOLS, analog_burst_num_samples, burst_num_samples, phy_bit_rate_bps
from testbed.phy.mcs import CODED_MCS, MCS_TABLE
from testbed.phy.numerology import PhyConfig

#: Safety margin (dB) over each MCS's 10%-PER SNR. 3 dB, the margin the daemons ran with: the thresholds are
#: those of an ideal receiver on AWGN and the real link adds SNR estimation error and fading between the
#: measurement and the frame; the engine's former 1 dB picked MCSs the real link loses frames at.
MCS_MARGIN_DB = 3.0
THRESHOLD_PER = 0.1  # the PER that defines an MCS's threshold SNR
MOST_ROBUST_MCS = CODED_MCS[0]  # bpsk-1/2: links not measured yet, or below every threshold
MAX_USABLE_PER = 0.99  # beyond this a link is refused rather than charged 100+ repeats per frame
# Defaults of the engine's scenario ([link]) and of a medium built without one (policy unit tests)
DEFAULT_FRAME_PAYLOAD_BYTES = 1500
DEFAULT_TDMA_CYCLE_SAMPLES = 500_000  # 200 ms at 2.5 MS/s: 11 slots (BS + 10 UEs) hold a 1500-byte bpsk-1/2 frame
DEFAULT_GUARD_SAMPLES = 80  # one OFDM symbol (64 + 16 CP)
DEFAULT_ANALOG_FRAME_SYMBOLS = 4800  # 100 OFDM symbols of 48 data subcarriers: shorter than a bpsk-1/2 frame


#: A link's per-subcarrier channel: (n_data,) float |H_k|^2, mean 1, data subcarriers in PhyConfig order; None: flat
Gain = Sequence[float] | np.ndarray | None


class ErrorModel(Protocol):
    """Frame error rate of one MCS on one link; a measured PER table or an analytic curve."""

    def frame_error_rate(self, mcs: str, payload_bytes: int, snr_db: float) -> float:
        """Probability that a frame of ``payload_bytes`` at ``mcs`` is lost at ``snr_db`` (Es/N0 per subcarrier)."""
        ...

    def snr_db_at_per(self, mcs: str, per: float, payload_bytes: int) -> float:
        """The SNR at which frames of ``payload_bytes`` at ``mcs`` are lost with probability ``per``."""
        ...

    def effective_snr_db(self, mcs: str, subcarrier_snr: np.ndarray, payload_bytes: int) -> float:
        """AWGN-equivalent SNR (dB) at ``mcs`` for frames of ``payload_bytes`` of a channel given as (n_data,)
        linear per-subcarrier SNRs (EESM). Needed only for frequency-selective links (a ``gain``)."""
        ...


@functools.cache
def _shipped_table(numerology: tuple) -> ErrorModel:
    return load_per_table(phy=PhyConfig(**dict(numerology)))


def default_errors(phy: PhyConfig | None = None) -> ErrorModel:
    """The error model every caller uses unless it passes its own: the PER table this project's receiver
    measured (testbed/link/per_table.json, ``testbed phy table`` regenerates it), checked against ``phy``'s
    numerology (ConfigError naming the file if it was measured for another one). Loaded once per numerology."""
    phy = phy if phy is not None else PhyConfig()
    return _shipped_table(tuple((name, getattr(phy, name)) for name in NUMEROLOGY_FIELDS))


def bits_per_subcarrier(mcs: str) -> Fraction:
    """Information bits per data subcarrier per OFDM symbol: the one speed ranking of MCSs."""
    m = MCS_TABLE[mcs]
    return m.bits_per_symbol * (m.code_rate if m.code_rate is not None else Fraction(1))


def thresholds_db(errors: ErrorModel, frame_payload_bytes: int) -> dict[str, float]:
    """{coded MCS: SNR for 10% PER on frames of ``frame_payload_bytes``} from ``errors``."""
    return {name: errors.snr_db_at_per(name, THRESHOLD_PER, frame_payload_bytes) for name in CODED_MCS}


@dataclass(frozen=True)
class McsPolicy:
    """The MCS chooser: the fastest MCS whose 10%-PER SNR plus ``MCS_MARGIN_DB`` is at most the link's SNR.

    fixed_mcs : use this MCS always (experiments); None for adaptive.
    thresholds_db : 10%-PER SNR per MCS name, the candidates (default: ``default_errors()`` at
        ``DEFAULT_FRAME_PAYLOAD_BYTES``; ``from_errors`` for a given frame size, ``thresholds_from_per_sweep`` for
        measured curves).
    """

    fixed_mcs: str | None = None
    thresholds_db: Mapping[str, float] = field(
        default_factory=lambda: thresholds_db(default_errors(), DEFAULT_FRAME_PAYLOAD_BYTES)
    )

    def __post_init__(self) -> None:
        for name in [self.fixed_mcs, *self.thresholds_db]:
            if name is not None and name not in MCS_TABLE:
                raise LinkError(f"unknown MCS {name!r} in McsPolicy; choose from {', '.join(MCS_TABLE)}")
        if not self.thresholds_db:
            raise LinkError("McsPolicy.thresholds_db is empty; give at least one MCS and its 10%-PER SNR")

    @classmethod
    def from_errors(cls, errors: ErrorModel, frame_payload_bytes: int, fixed_mcs: str | None = None) -> McsPolicy:
        return cls(fixed_mcs, thresholds_db(errors, frame_payload_bytes))

    def required_snr_db(self, mcs: str) -> float:
        """The least SNR at which ``mcs`` is chosen: its 10%-PER SNR plus the margin."""
        if mcs not in self.thresholds_db:
            raise LinkError(f"MCS {mcs!r} is not a candidate; candidates: {', '.join(self.thresholds_db)}")
        return self.thresholds_db[mcs] + MCS_MARGIN_DB

    def usable(self, snr_db: float, effective_db: Mapping[str, float] | None = None) -> list[str]:
        """Candidate MCSs a link at ``snr_db`` supports, slowest first. ``effective_db``: {MCS: the link's
        effective SNR at that MCS} for a frequency-selective link (replaces ``snr_db`` per MCS)."""
        snr = effective_db if effective_db is not None else dict.fromkeys(self.candidates, snr_db)
        return [n for n in self.candidates if self.required_snr_db(n) <= snr[n]]

    @property
    def candidates(self) -> list[str]:
        """Every MCS this chooser may return, slowest first."""
        return [self.fixed_mcs] if self.fixed_mcs is not None else sorted(self.thresholds_db, key=bits_per_subcarrier)

    def choose(self, snr_db: float | None, effective_db: Mapping[str, float] | None = None) -> str:
        """MCS for a link whose measured SNR is ``snr_db`` (None: not measured yet); ``effective_db`` as in
        :meth:`usable`."""
        if self.fixed_mcs is not None:
            return self.fixed_mcs
        ok = self.usable(snr_db, effective_db) if snr_db is not None else []
        return ok[-1] if ok else MOST_ROBUST_MCS


def thresholds_from_per_sweep(sweep: Mapping[str, Any], channel: str = "awgn") -> dict[str, float]:
    """{mcs: SNR at 10% PER} from the JSON of ``testbed phy ber --json`` for one channel ("awgn",
    "multipath"); coded MCSs whose search found no crossing are left out. Raises LinkError if none is left."""
    per_mcs = sweep.get(channel)
    if not isinstance(per_mcs, Mapping):
        raise LinkError(f"no {channel!r} PER sweep in the given results (keys: {sorted(sweep)}); run testbed phy ber")
    out = {}
    for name, entry in per_mcs.items():
        snr = entry.get("snr_db_at_per_10pct") if isinstance(entry, Mapping) else None
        if name in CODED_MCS and snr is not None:
            out[name] = float(snr)
    if not out:
        raise LinkError(f"the {channel!r} PER sweep has no coded MCS with a 10%-PER SNR")
    return out


@dataclass(frozen=True)
class Transfer:
    """What one transfer costs: ``elapsed_s`` = ``cycles`` whole TDMA cycles (what a round waits for),
    ``on_air_s`` the sender's own bursts (expected repeats included; radio energy), ``frames`` the expected
    transmissions, ``mcs`` the digital part's MCS (None for none)."""

    elapsed_s: float
    on_air_s: float
    frames: float
    cycles: int
    mcs: str | None


NOTHING = Transfer(0.0, 0.0, 0.0, 0, None)


def channel_gain(phy: PhyConfig, taps: np.ndarray) -> tuple[float, ...]:
    """(n_data,) |H_k|^2 of a tapped delay line on ``phy``'s data subcarriers, scaled to mean 1: the link's
    mean SNR stays its ``snr_db`` and the channel adds only its frequency selectivity."""
    g = subcarrier_snr(phy, taps, 0.0)
    if not np.all(np.isfinite(g)) or g.mean() <= 0:
        raise LinkError("channel taps have no power on the data subcarriers")
    return tuple(float(v) for v in g / g.mean())


class LinkAirtime:
    """Airtime on the shared medium of ``num_ues`` UEs and one BS (module docstring).

    Raises ConfigError when a frame size is outside the PHY's range or a slot cannot hold one full frame at
    the most robust MCS (or one full analog frame)."""

    def __init__(
        self,
        phy: PhyConfig,
        num_ues: int,
        *,
        frame_payload_bytes: int = DEFAULT_FRAME_PAYLOAD_BYTES,
        tdma_cycle_samples: int = DEFAULT_TDMA_CYCLE_SAMPLES,
        guard_samples: int = DEFAULT_GUARD_SAMPLES,
        analog_frame_symbols: int = DEFAULT_ANALOG_FRAME_SYMBOLS,
        errors: ErrorModel | None = None,
        fixed_mcs: str | None = None,
    ) -> None:
        if not 1 <= frame_payload_bytes <= phy.max_payload_bytes:
            raise ConfigError(f"frame_payload_bytes={frame_payload_bytes} must be in 1..{phy.max_payload_bytes}")
        if not 1 <= analog_frame_symbols <= MAX_ANALOG_SYMBOLS:
            raise ConfigError(f"analog_frame_symbols={analog_frame_symbols} must be in 1..{MAX_ANALOG_SYMBOLS}")
        if num_ues < 1:
            raise ConfigError(f"the shared medium needs at least one UE, got {num_ues}")
        self.phy, self.num_ues = phy, num_ues
        self.frame_payload_bytes, self.analog_frame_symbols = frame_payload_bytes, analog_frame_symbols
        self.guard_samples, self.cycle_samples = guard_samples, tdma_cycle_samples
        self.errors = errors if errors is not None else default_errors(phy)
        self.mcs = McsPolicy.from_errors(self.errors, frame_payload_bytes, fixed_mcs)
        longest = max(
            burst_num_samples(phy, frame_payload_bytes, fixed_mcs or MOST_ROBUST_MCS),
            analog_burst_num_samples(phy, analog_frame_symbols),
        )
        schedule = cycle_schedule(tdma_cycle_samples, guard_samples, range(num_ues + 1), longest)
        self.slot_samples = schedule.slots[0].length_samples

    @property
    def cycle_s(self) -> float:
        return self.cycle_samples / self.phy.sample_rate_hz

    def rate_bps(self, mcs: str) -> float:
        """Information bit rate of ``mcs`` while a burst body is on air (the most a link at ``mcs`` can carry)."""
        return phy_bit_rate_bps(self.phy, mcs)

    def burst_s(self, payload_bytes: int, mcs: str) -> float:
        """Seconds on air of one frame of ``payload_bytes`` at ``mcs``."""
        return burst_num_samples(self.phy, payload_bytes, mcs) / self.phy.sample_rate_hz

    def _frames_per_slot(self, burst_samples: int) -> int:
        """Bursts of ``burst_samples`` one slot holds (ConfigError if none: an MCS slower than the chooser's)."""
        k = frames_per_slot(self.slot_samples, burst_samples, self.guard_samples)
        if k == 0:
            raise ConfigError(
                f"a {burst_samples}-sample frame does not fit the {self.slot_samples}-sample TDMA slot; raise "
                "tdma_cycle_samples or lower frame_payload_bytes"
            )
        return k

    # --- channels ----------------------------------------------------------------------------------
    def effective_snr_db(self, mcs: str, snr_db: float, gain: Gain = None, payload_bytes: int | None = None) -> float:
        """The link's AWGN-equivalent SNR at ``mcs`` for frames of ``payload_bytes`` (None: the link's
        ``frame_payload_bytes``): ``snr_db`` itself on a flat link (``gain`` None), else the EESM of ``gain`` x
        ``snr_db`` with the beta of ``mcs`` and that length (at most ``snr_db`` for a mean-1 gain)."""
        if gain is None:
            return snr_db
        g = np.asarray(gain, np.float64)
        if g.shape != (self.phy.num_data,):
            raise LinkError(f"gain must hold one |H_k|^2 per data subcarrier ({self.phy.num_data}), got {g.shape}")
        size = self.frame_payload_bytes if payload_bytes is None else payload_bytes
        return self.errors.effective_snr_db(mcs, g * 10.0 ** (snr_db / 10.0), size)

    def choose(self, snr_db: float | None, gain: Gain = None) -> str:
        """The one chooser (``McsPolicy``) on the link's effective SNR at each candidate MCS."""
        if gain is None or snr_db is None:
            return self.mcs.choose(snr_db)
        return self.mcs.choose(snr_db, {m: self.effective_snr_db(m, snr_db, gain) for m in self.mcs.candidates})

    # --- the Airtime protocol --------------------------------------------------------------------------
    def broadcast(
        self, payload_bytes: int, worst_snr_db: float | None, channels: Sequence[tuple[float, Gain]] = ()
    ) -> Transfer:
        """The BS's downlink broadcast of ``payload_bytes`` that a flat receiver at ``worst_snr_db`` and every
        frequency-selective receiver in ``channels`` ((snr_db, gain) each) decode: at the slowest MCS the chooser
        gives any of them, charged at the receiver with the lowest effective SNR at that MCS (on its frames)."""
        if worst_snr_db is None:
            return self.transfer(payload_bytes, self.mcs.choose(None), None)
        receivers: list[tuple[float, Gain]] = [(worst_snr_db, None), *channels]
        mcs = min((self.choose(s, g) for s, g in receivers), key=bits_per_subcarrier)
        snr, gain = min(receivers, key=lambda r: self.effective_snr_db(mcs, r[0], r[1]))
        return self.transfer(payload_bytes, mcs, snr, gain=gain)

    def upload(self, payload_bytes: int, snr_db: float | None, analog_symbols: int = 0, gain: Gain = None) -> Transfer:
        """A UE's uplink: ``payload_bytes`` of digital payload at the MCS its ``snr_db`` (and channel ``gain``)
        affords, plus ``analog_symbols`` complex semantic symbols in analog frames, in the UE's own slots."""
        return self.transfer(payload_bytes, self.choose(snr_db, gain), snr_db, analog_symbols, gain)

    # --- one transfer ----------------------------------------------------------------------------------
    def transfer(
        self, payload_bytes: int, mcs: str, snr_db: float | None, analog_symbols: int = 0, gain: Gain = None
    ) -> Transfer:
        """``payload_bytes`` at ``mcs`` over a link at ``snr_db`` (None: unknown, no loss charged; ``gain``: its
        per-subcarrier channel, frames lost at the EESM effective SNR) plus ``analog_symbols`` analog symbols,
        sent by one node in its slot of successive cycles.

        Raises ConfigError when the link loses more than MAX_USABLE_PER of its frames."""
        if payload_bytes < 0 or analog_symbols < 0:
            raise LinkError(f"payload_bytes={payload_bytes} and analog_symbols={analog_symbols} must be >= 0")
        if payload_bytes == 0 and analog_symbols == 0:
            return NOTHING
        fs, size = self.phy.sample_rate_hz, self.frame_payload_bytes
        frames = samples = slots = 0.0
        full, rest = divmod(payload_bytes, size)
        for nbytes, count in ((size, full), (rest, 1 if rest else 0)):
            if count:
                snr = None if snr_db is None else self.effective_snr_db(mcs, snr_db, gain, nbytes)
                per = self.errors.frame_error_rate(mcs, nbytes, snr) if snr is not None else 0.0
                if per > MAX_USABLE_PER:
                    raise ConfigError(
                        f"a link at {snr:.1f} dB (effective) loses {per:.1%} of {nbytes}-byte frames even at {mcs}; "
                        "raise its SNR or TX power"
                    )
                sent, burst = count / (1.0 - per), burst_num_samples(self.phy, nbytes, mcs)
                frames += sent
                samples += sent * burst
                slots += sent / self._frames_per_slot(burst)
        full, rest = divmod(analog_symbols, self.analog_frame_symbols)
        for nsym, count in ((self.analog_frame_symbols, full), (rest, 1 if rest else 0)):
            if count:
                burst = analog_burst_num_samples(self.phy, nsym)
                frames += count
                samples += count * burst
                slots += count / self._frames_per_slot(burst)
        cycles = math.ceil(slots - 1e-9)  # a burst takes 1/k of a slot that holds k of its size
        return Transfer(cycles * self.cycle_s, samples / fs, frames, cycles, mcs if payload_bytes else None)

    def describe(self, snr_db: float, gain: Gain = None) -> str:
        """'qpsk-3/4 @ 4.50 Mbit/s' for a link at ``snr_db`` with channel ``gain`` (for logs and tables)."""
        mcs = self.choose(snr_db, gain)
        return f"{mcs} @ {self.rate_bps(mcs) / 1e6:.2f} Mbit/s"
