"""One frame through a simulated link and what the real receiver made of it (for the PHY sweeps).

Each trial puts the burst at a random offset inside a buffer of silence, applies the channel models,
adds noise over the whole buffer and hands it to ``OfdmModem.demodulate``: no genie timing, CFO or
channel knowledge. Raw (pre-decoder) bit errors are counted from hard decisions on the equalized symbols
against the symbols a noiseless reception of the same burst yields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from testbed.channel import Awgn, ChannelModel, FrequencyOffset, Multipath
from testbed.errors import ConfigError
from testbed.phy import MCS_TABLE, OfdmModem, RxFrame
from testbed.phy.modulation import demap_llr

GAP_SAMPLES = (200, 2000)  # range of the random silence before and after each burst
MULTIPATH_RMS_DELAY_SAMPLES = 2.0  # issue 2 multipath profile: rms delay spread 2 samples at CP 16
MULTIPATH_MAX_CFO_SPACINGS = 1.5  # issue 2 multipath profile: CFO uniform within +-1.5 subcarrier spacings

#: builds the channel models of one frame (a fresh realisation each call) from the trial's generator
ChannelFactory = Callable[[np.random.Generator], Sequence[ChannelModel]]


def awgn_only(rng: np.random.Generator) -> Sequence[ChannelModel]:
    """No impairment besides the noise the trial adds."""
    return ()


def random_cfo(modem: OfdmModem, max_spacings: float) -> ChannelFactory:
    """A CFO drawn uniformly within +-max_spacings subcarrier spacings, with a random initial phase."""
    cfg = modem.cfg

    def factory(rng: np.random.Generator) -> Sequence[ChannelModel]:
        cfo_hz = rng.uniform(-max_spacings, max_spacings) * cfg.subcarrier_spacing_hz
        return (FrequencyOffset(cfo_hz, cfg.sample_rate_hz, rng.uniform(0.0, 2.0 * np.pi)),)

    return factory


def multipath_cfo(modem: OfdmModem) -> ChannelFactory:
    """The issue's multipath profile: Rayleigh, exponential, rms 2 samples, fresh per frame, plus random CFO."""
    cfo = random_cfo(modem, MULTIPATH_MAX_CFO_SPACINGS)

    def factory(rng: np.random.Generator) -> Sequence[ChannelModel]:
        return (Multipath(MULTIPATH_RMS_DELAY_SAMPLES, rng), *cfo(rng))

    return factory


def channel_factory(name: str, modem: OfdmModem) -> ChannelFactory:
    """The sweep channels by name: "awgn" or "multipath"."""
    factories = {"awgn": lambda: awgn_only, "multipath": lambda: multipath_cfo(modem)}
    if name not in factories:
        raise ConfigError(f"unknown channel {name!r}; choose one of {', '.join(factories)}")
    return factories[name]()


def seeded_draw(channel: ChannelFactory, seed: tuple[int, ...]) -> ChannelFactory:
    """``channel`` drawn from a fresh generator seeded by ``seed`` on every call, ignoring the trial's generator.

    Two trials given the same seeded draw see the same channel realisation (common random numbers), whatever
    else they take from their own generators.
    """
    return lambda _: channel(np.random.default_rng(seed))


def hard_bits(symbols: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """(n * bits_per_symbol,) bool hard decisions (True = bit 1) of (n,) complex64 equalized symbols."""
    return demap_llr(symbols, 1.0, bits_per_symbol) < 0


@dataclass(frozen=True)
class LinkTruth:
    """What the simulation knows about one received buffer and a real receiver must estimate.

    clean : (n,) complex64 the buffer after the channel models, before the noise.
    start : index of the burst's first sample (its first path) in the buffer.
    models : the channel models applied (their parameters: CFO, taps).
    noise_var : noise variance per subcarrier at the receiver's FFT output (1/snr).
    """

    clean: np.ndarray
    start: int
    models: tuple[ChannelModel, ...]
    noise_var: float


@dataclass(frozen=True)
class Reception:
    """The outcome of one frame trial."""

    delivered: bool  # a reported frame carried exactly the sent payload with a good CRC
    detected: bool  # some frame was reported within +-cp_len samples of the true start
    bit_errors: int  # raw channel bit errors; a missed frame counts half its bits
    bits: int
    frame: RxFrame | None  # the reported frame nearest the true start, if detected
    channel_models: tuple[ChannelModel, ...]


#: one frame at an SNR through a fresh channel realisation: FrameTrial (real receiver) or GenieTrial
Trial = Callable[[float, ChannelFactory, np.random.Generator], Reception]


class FrameTrial:
    """Send one fixed random payload at one MCS through fresh channel realisations, one frame per call."""

    def __init__(self, modem: OfdmModem, mcs: str, payload_bytes: int, rng: np.random.Generator) -> None:
        if mcs not in MCS_TABLE:
            raise ConfigError(f"unknown MCS {mcs!r}; choose one of {', '.join(MCS_TABLE)}")
        self.modem = modem
        self.mcs = MCS_TABLE[mcs]
        self.payload = rng.bytes(payload_bytes)
        self.burst = modem.modulate(self.payload, mcs=mcs)
        silence = np.zeros(GAP_SAMPLES[0], np.complex64)
        clean = modem.demodulate(np.concatenate([silence, self.burst, silence]))
        if len(clean) != 1 or not clean[0].crc_ok:
            raise ConfigError(f"the modem does not decode its own noiseless {mcs} burst; fix the PHY first")
        self.reference_bits = hard_bits(clean[0].symbols, self.mcs.bits_per_symbol)

    def receive(self, buf: np.ndarray, truth: LinkTruth) -> list[RxFrame]:
        """The frames the receiver finds in ``buf`` ((n,) complex64); ``truth`` is for oracle receivers only."""
        return self.modem.demodulate(buf)

    def buffer(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """(n,) complex64 silence + burst + silence with random gaps, and the burst's start index."""
        lead, trail = rng.integers(*GAP_SAMPLES, size=2)
        buf = np.zeros(lead + self.burst.size + trail, np.complex64)
        buf[lead : lead + self.burst.size] = self.burst
        return buf, int(lead)

    def __call__(self, snr_db: float, channel: ChannelFactory, rng: np.random.Generator) -> Reception:
        """Send the burst once at ``snr_db`` (Es/N0 per data subcarrier) through a fresh ``channel``."""
        buf, start = self.buffer(rng)
        models = tuple(channel(rng))
        for model in models:
            buf = model(buf)
        clean = buf
        buf = Awgn(snr_db, rng, occupied_fraction=self.modem.cfg.occupied_fraction)(buf)
        start += sum(getattr(m, "LATENCY_SAMPLES", 0) for m in models)  # resamplers delay the burst
        frames = self.receive(buf, LinkTruth(clean, start, models, 10.0 ** (-snr_db / 10.0)))
        delivered = any(f.crc_ok and f.payload == self.payload for f in frames)
        near = [f for f in frames if abs(f.start - start) <= self.modem.cfg.cp_len]
        frame = min(near, key=lambda f: abs(f.start - start), default=None)
        n_bits = self.reference_bits.size
        if frame is None or frame.mcs != self.mcs.name or frame.symbols.size * self.mcs.bits_per_symbol != n_bits:
            errors = n_bits // 2
        else:
            errors = int(np.count_nonzero(hard_bits(frame.symbols, self.mcs.bits_per_symbol) != self.reference_bits))
        return Reception(delivered, frame is not None, errors, n_bits, frame, models)
