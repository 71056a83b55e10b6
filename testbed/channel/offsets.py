"""Frequency, timing and sampling-clock offsets between transmitter and receiver."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from testbed.channel._interp import HALF_TAPS, interpolate
from testbed.channel.base import as_iq, require_finite

MAX_SCO_PPM = 10_000.0  # 1 %: far beyond any crystal (Pluto's is +-25 ppm), catches unit mistakes


@dataclass(frozen=True)
class FrequencyOffset:
    """Carrier frequency offset: multiply by exp(j(2 pi cfo_hz t + phase)), phase continuous across calls.

    cfo_hz : offset of the received carrier in Hz (positive shifts the spectrum up).
    sample_rate_hz : complex sample rate the blocks are at.
    initial_phase_rad : phase of the first sample of the first block.
    """

    cfo_hz: float
    sample_rate_hz: float
    initial_phase_rad: float = 0.0
    _state: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_finite("FrequencyOffset sample_rate_hz", self.sample_rate_hz, low=1.0)
        half = self.sample_rate_hz / 2.0
        require_finite("FrequencyOffset cfo_hz (must be within +-sample_rate_hz/2)", self.cfo_hz, low=-half, high=half)
        require_finite("FrequencyOffset initial_phase_rad", self.initial_phase_rad)
        object.__setattr__(self, "_state", {"phase_rad": float(self.initial_phase_rad)})

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 rotated; the next call continues the phase."""
        x = as_iq(iq, "FrequencyOffset")
        step_rad = 2.0 * math.pi * self.cfo_hz / self.sample_rate_hz
        phase0 = self._state["phase_rad"]
        rotor = np.exp(1j * (phase0 + step_rad * np.arange(x.size))).astype(np.complex64)
        self._state["phase_rad"] = math.remainder(phase0 + step_rad * x.size, 2.0 * math.pi)
        return x * rotor


@dataclass(frozen=True)
class TimingOffset:
    """Delay a block by ``delay_samples`` (integer + fractional) with zeros shifted in; the length is kept.

    Output k is the band-limited input at position k - delay_samples (windowed-sinc interpolation,
    testbed.channel._interp); samples pushed past the end are dropped, a negative delay advances the block
    and shifts zeros in at the end. Each call is independent: delay a whole burst or buffer at once.
    """

    delay_samples: float

    def __post_init__(self) -> None:
        require_finite("TimingOffset delay_samples", self.delay_samples, low=-1e9, high=1e9)

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 delayed."""
        x = as_iq(iq, "TimingOffset")
        pad = HALF_TAPS + min(int(math.ceil(abs(self.delay_samples))), x.size) + 1
        padded = np.concatenate([np.zeros(pad, np.complex64), x, np.zeros(pad, np.complex64)])
        delay = float(np.clip(self.delay_samples, -x.size, x.size))  # beyond +-n the block is all zeros
        return interpolate(padded, pad - delay, 1.0, x.size)


@dataclass(frozen=True)
class SamplingClockOffset:
    """Receiver sample clock off by ``ppm``: the block is resampled by (1 + ppm * 1e-6).

    A positive ppm is a fast receiver clock: n input samples become about n (1 + ppm 1e-6) output samples,
    output k being the input at position k / (1 + ppm 1e-6). The windowed-sinc resampler looks HALF_TAPS
    samples ahead, so the output carries a fixed latency of ``LATENCY_SAMPLES`` (zeros shifted in at the
    start). State carries across calls, so a stream processed block by block equals one long block.
    """

    ppm: float
    _state: dict = field(init=False, repr=False, compare=False)

    LATENCY_SAMPLES = HALF_TAPS

    def __post_init__(self) -> None:
        require_finite("SamplingClockOffset ppm", self.ppm, low=-MAX_SCO_PPM, high=MAX_SCO_PPM)
        # history: the last 2*HALF_TAPS input samples; position: next output, in history-relative samples
        object.__setattr__(
            self, "_state", {"history": np.zeros(2 * HALF_TAPS, np.complex64), "position": float(HALF_TAPS)}
        )

    @property
    def step_samples(self) -> float:
        """Input samples advanced per output sample."""
        return 1.0 / (1.0 + self.ppm * 1e-6)

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (m,) complex64 with m = n (1 + ppm 1e-6) up to one sample."""
        x = as_iq(iq, "SamplingClockOffset")
        ext = np.concatenate([self._state["history"], x])
        pos, step = self._state["position"], self.step_samples
        last = ext.size - HALF_TAPS - 1  # furthest position the interpolator can reach with this block
        count = int(math.floor((last - pos) / step)) + 1 if pos <= last else 0
        out = interpolate(ext, pos, step, count)
        self._state["history"] = ext[-2 * HALF_TAPS :].copy()
        self._state["position"] = pos + count * step - x.size
        return out
