"""A perfect-CSI, perfect-sync reference link for the PER sweeps, and the real receiver told part of the truth.

:class:`GenieTrial`: the coded chain is that of IEEE 802.11a 17.3.5 built from the PHY's own stages (K=7 code,
puncturing, interleaver, Gray mapping, max-log demapper, soft Viterbi), simulated per data subcarrier:
y = H x + n with H the channel's frequency response, equalized with the true H and demapped with the
true per-subcarrier noise variance. No preamble, no estimation, no CFO. On AWGN it reproduces the
reference table of ARCHITECTURE.md (tested); on the fading profile it separates what the channel costs
from what the real receiver loses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from testbed.channel import FrequencyOffset, Multipath
from testbed.experiment.phylab.link import ChannelFactory, FrameTrial, LinkTruth, Reception, seeded_draw
from testbed.phy import MCS_TABLE, OfdmModem, PhyConfig, RxFrame
from testbed.phy.convcode import conv_encode, depuncture, puncture, viterbi_decode
from testbed.phy.estimation import ChannelEstimate, ChannelEstimator
from testbed.phy.interleaver import deinterleave, interleave
from testbed.phy.layout import CRC_BYTES, payload_num_symbols
from testbed.phy.modulation import demap_llr, map_bits
from testbed.phy.receiver import Receiver
from testbed.phy.sync import Synchronizer, SyncResult
from testbed.phy.tracking import PhaseTrack


class GenieTrial:
    """One frame of ``payload_bytes`` at one MCS through the channel's true frequency response."""

    def __init__(self, cfg: PhyConfig, mcs: str, payload_bytes: int) -> None:
        self.cfg = cfg
        self.mcs = MCS_TABLE[mcs]
        self.n_info = 8 * (payload_bytes + CRC_BYTES)
        n_sym = payload_num_symbols(cfg, payload_bytes, self.mcs)
        self.n_bits = n_sym * self.mcs.data_bits_per_ofdm_symbol(cfg.num_data)  # info + tail + zero pad
        self.n_cbps = self.mcs.coded_bits_per_ofdm_symbol(cfg.num_data)
        self.data_bins = cfg.fft_bins(cfg.data_subcarriers)

    def response(self, channel: ChannelFactory, rng: np.random.Generator) -> np.ndarray:
        """(num_data,) complex frequency response on the data subcarriers of one fresh realisation."""
        h = np.ones(self.cfg.num_data, np.complex128)
        for model in channel(rng):
            if isinstance(model, Multipath):  # offsets and noise are the real receiver's business
                h = h * np.fft.fft(model.draw_taps(), n=self.cfg.fft_size)[self.data_bins]
        return h

    def __call__(self, snr_db: float, channel: ChannelFactory, rng: np.random.Generator) -> Reception:
        """Send one random frame at ``snr_db`` (Es/N0 per data subcarrier) with perfect CSI at the receiver."""
        bps = self.mcs.bits_per_symbol
        bits = np.zeros(self.n_bits, np.uint8)
        bits[: self.n_info] = rng.integers(0, 2, self.n_info, dtype=np.uint8)  # tail and pad stay zero
        coded = bits
        if self.mcs.coded:
            coded = puncture(conv_encode(bits), self.mcs.code_rate)
        tx = map_bits(interleave(coded, self.n_cbps, bps), bps).reshape(-1, self.cfg.num_data)  # (n_sym, n_data)
        h = self.response(channel, rng)
        n0 = 10.0 ** (-snr_db / 10.0)
        noise = (rng.standard_normal(tx.shape) + 1j * rng.standard_normal(tx.shape)) * np.sqrt(n0 / 2)
        z = ((tx * h + noise) / h).astype(np.complex64).ravel()
        noise_var = np.broadcast_to(n0 / np.abs(h) ** 2, tx.shape).ravel().astype(np.float32)
        llrs = deinterleave(demap_llr(z, noise_var, bps), self.n_cbps, bps)
        raw_errors = int(np.count_nonzero((llrs < 0) != coded.astype(bool)))
        if self.mcs.coded:
            decoded = viterbi_decode(depuncture(llrs, self.mcs.code_rate, 2 * self.n_bits), self.n_info)
        else:
            decoded = (llrs[: self.n_info] < 0).astype(np.uint8)
        ok = bool(np.array_equal(decoded, bits[: self.n_info]))
        return Reception(ok, True, raw_errors, coded.size, None, ())


@dataclass(frozen=True)
class Knowledge:
    """What the receiver is told instead of estimating it (all False: the real receiver).

    timing : FFT windows placed at the true first path minus ``backoff_samples``.
    cfo : the true carrier frequency offset.
    channel : the frequency response the noiseless LTF shows (no estimation noise; error gain 0).
    noise : the true noise variance (for the LLR weights).
    phase : the true CFO and no pilot tracking (the phase is then constant: the sweep channels have no phase
        noise or clock offset), so the tracker's estimation noise is gone.
    backoff_samples : FFT-window back-off before the first path; None keeps the receiver's (cp/4).
    """

    timing: bool = False
    cfo: bool = False
    channel: bool = False
    noise: bool = False
    phase: bool = False
    backoff_samples: int | None = None


#: the variants of :func:`loss_breakdown`: one piece of knowledge at a time, then all of it
BREAKDOWN: dict[str, Knowledge] = {
    "receiver": Knowledge(),
    "timing": Knowledge(timing=True),
    "timing_no_backoff": Knowledge(timing=True, backoff_samples=0),
    "cfo": Knowledge(cfo=True),
    "channel": Knowledge(channel=True),
    "noise": Knowledge(noise=True),
    "phase": Knowledge(phase=True),
    "all": Knowledge(timing=True, cfo=True, channel=True, noise=True, phase=True, backoff_samples=0),
}


class _OracleSync(Synchronizer):
    """Refines as usual, then replaces what the receiver is told and works out the true channel for it."""

    def __init__(self, receiver: _OracleReceiver) -> None:
        super().__init__(receiver.cfg)
        self.receiver = receiver
        if receiver.knowledge.backoff_samples is not None:
            self.backoff = receiver.knowledge.backoff_samples

    def refine(self, iq: np.ndarray, coarse_start: int, coarse_cfo: float) -> SyncResult | None:
        sync = super().refine(iq, coarse_start, coarse_cfo)
        rx, truth = self.receiver, self.receiver.truth
        if sync is None or truth is None:
            return sync
        if rx.knowledge.timing:
            arrival = truth.start + rx.preamble.ltf_offset
            sync = replace(sync, window_start=arrival - self.backoff, burst_start=truth.start)
        if rx.knowledge.cfo or rx.knowledge.phase:
            offsets = [m.cfo_hz for m in truth.models if isinstance(m, FrequencyOffset)]
            sync = replace(sync, cfo=sum(offsets) / self.cfg.subcarrier_spacing_hz)
        ltf = rx.clean_subcarriers(truth.clean, sync)
        rx.true_h = None if ltf is None else (ltf * np.conj(rx.preamble.ltf_values)).mean(axis=0)
        return sync


class _OracleEstimator(ChannelEstimator):
    """The receiver's estimator, with the channel and/or noise variance replaced by the truth."""

    def __init__(self, receiver: _OracleReceiver, real: ChannelEstimator) -> None:
        super().__init__(receiver.cfg)
        self.receiver, self.real = receiver, real

    def estimate(self, y_train: np.ndarray, x_train: np.ndarray) -> ChannelEstimate:
        return self._told(self.real.estimate(y_train, x_train))

    def estimate_known(self, y: np.ndarray, x: np.ndarray, noise_var: float, noise_dof: int) -> ChannelEstimate:
        return self._told(self.real.estimate_known(y, x, noise_var, noise_dof))

    def smooth(self, h_ls: np.ndarray, ls_noise_var: float) -> tuple[np.ndarray, np.ndarray]:
        return self.real.smooth(h_ls, ls_noise_var)

    def _told(self, est: ChannelEstimate) -> ChannelEstimate:
        rx = self.receiver
        if rx.knowledge.channel and rx.true_h is not None:
            est = replace(est, h=rx.true_h.astype(np.complex64), error_gain=np.zeros_like(est.error_gain))
        if rx.knowledge.noise and rx.truth is not None:
            est = replace(est, noise_var=rx.truth.noise_var)
        return est


class _OracleReceiver(Receiver):
    """The real receiver with a :class:`Knowledge` of the truth of the buffer it is given."""

    def __init__(self, cfg: PhyConfig, knowledge: Knowledge) -> None:
        super().__init__(cfg)
        self.knowledge = knowledge
        self.truth: LinkTruth | None = None
        self.true_h: np.ndarray | None = None
        self.sync = _OracleSync(self)
        self.estimator = _OracleEstimator(self, self.estimator)

    def clean_subcarriers(self, clean: np.ndarray, sync: SyncResult) -> np.ndarray | None:
        """(2, n_used) the two LTF symbols of the noiseless buffer through this receiver's windows."""
        return self._subcarriers(clean, sync, 2, 0)

    def _track(self, y: np.ndarray, est: ChannelEstimate) -> tuple[PhaseTrack, float]:
        track, noise_var = super()._track(y, est)
        if self.knowledge.phase:
            zero = np.zeros(y.shape[0])
            track = PhaseTrack(zero, zero, 0.0, y.shape[0], 0.0)
        if self.knowledge.noise and self.truth is not None:
            noise_var = self.truth.noise_var
        return track, noise_var


class OracleTrial(FrameTrial):
    """A :class:`FrameTrial` whose receiver is told what ``knowledge`` names (see the module docstring)."""

    def __init__(
        self, modem: OfdmModem, mcs: str, payload_bytes: int, rng: np.random.Generator, knowledge: Knowledge
    ) -> None:
        super().__init__(modem, mcs, payload_bytes, rng)
        self.receiver = _OracleReceiver(modem.cfg, knowledge)

    def receive(self, buf: np.ndarray, truth: LinkTruth) -> list[RxFrame]:
        self.receiver.truth = truth
        return self.receiver.demodulate(buf)


def _counted(lost: bool, progress: Callable[[int], None]) -> bool:
    progress(1)
    return lost


def loss_breakdown(
    modem: OfdmModem,
    mcs: str,
    snr_db: float,
    channel: ChannelFactory,
    frames: int,
    seed: int,
    variants: dict[str, Knowledge] | None = None,
    payload_bytes: int = 1000,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, dict]:
    """PER at ``snr_db`` of the receiver told each variant's knowledge, and of the genie, over the same frames.

    Frame i has the same channel draw (seeded by (seed, i)) and, for every receiver variant, the same burst
    position and noise; so the variants differ only in what they were told. Returns {variant: {per,
    fewer_losses, more_losses}} where the last two count the frames the variant delivered and the plain
    receiver lost, and the reverse (a paired comparison: their difference is what the knowledge is worth).
    ``progress(n)`` is told each frame trial done: ``frames * (len(variants) + 2)`` in all.
    """
    variants = BREAKDOWN if variants is None else variants
    failed: dict[str, np.ndarray] = {}
    for name, knowledge in {"receiver": Knowledge(), **variants}.items():
        rng = np.random.default_rng(seed)
        trial = OracleTrial(modem, mcs, payload_bytes, rng, knowledge)
        draws = (seeded_draw(channel, (seed, i)) for i in range(frames))
        failed[name] = np.array([_counted(not trial(snr_db, draw, rng).delivered, progress) for draw in draws])
    genie, rng = GenieTrial(modem.cfg, mcs, payload_bytes), np.random.default_rng(seed)
    failed["genie"] = np.array(
        [_counted(not genie(snr_db, seeded_draw(channel, (seed, i)), rng).delivered, progress) for i in range(frames)]
    )
    base = failed["receiver"]
    return {
        name: {
            "per": float(lost.mean()),
            "fewer_losses": int(np.count_nonzero(base & ~lost)),
            "more_losses": int(np.count_nonzero(~base & lost)),
        }
        for name, lost in failed.items()
    }
