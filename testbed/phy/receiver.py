"""The streaming receiver: every burst in a long IQ buffer -> typed :class:`RxFrame` records.

Per detected STF (sync.py): fine timing and CFO -> the LTF and every later symbol taken with one reshape,
CFO-corrected, one 2-D FFT -> channel estimate (estimation.py) -> pilot tracking (tracking.py) ->
equalization -> header (header.py) -> body (payload.py, or the raw symbols of an analog frame).
A burst whose header fails its CRC yields no frame; a data burst whose payload CRC fails yields a frame
with ``crc_ok=False`` and ``payload=None``. Counters live in :class:`RxStats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from testbed.errors import PhyError
from testbed.phy.estimation import ChannelEstimate, make_estimator
from testbed.phy.grid import grid_for
from testbed.phy.header import Header, HeaderCodec
from testbed.phy.layout import analog_num_symbols
from testbed.phy.mcs import MCS_BY_INDEX
from testbed.phy.numerology import PhyConfig
from testbed.phy.payload import PayloadCodec, body_size
from testbed.phy.preamble import preamble_for
from testbed.phy.rxkernel import gather_windows
from testbed.phy.sync import Synchronizer, SyncResult
from testbed.phy.tracking import PhaseTrack, PilotTracker, common_phase, phasor

MAX_INPUT_SAMPLES = 1 << 26  # ~27 s at 2.5 MS/s; longer buffers are refused (split them)
CHANNEL_FLOOR = 1e-6  # |h|^2 floor, relative to the mean, so a deep null cannot divide by zero

_NOISE_MIN, _NOISE_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max) / 16


@dataclass(frozen=True)
class RxFrame:
    """One received burst and what the receiver learnt about it.

    payload : bytes, or None when the CRC failed (data frames) / always None (analog frames).
    symbols : (n,) complex64 equalized body symbols (analog: exactly the n transmitted values).
    noise_var : mean noise variance of ``symbols`` (constellation scale).
    crc_ok : payload CRC-32 passed (analog frames: True, they carry no CRC).
    mcs : MCS name, or "analog".
    frame_type : "data" or "analog".
    stream_id, seq : from the header.
    start : index in the given buffer of the burst's first sample.
    snr_db : Es/N0 per data subcarrier (channel power from LTF + header, noise from them and the pilots).
    cfo_hz : carrier frequency offset (preamble estimate plus pilot-tracked residual).
    channel : (n_used,) complex64 frequency response on cfg.used_subcarriers, in that order.
    evm_db : error vector magnitude of ``symbols``, 10 log10(noise_var): the error power measured on the
        known training and pilot symbols, carried through the equalizer (no decisions, so it stays honest
        at low SNR where hard-decision EVM looks too good).
    """

    payload: bytes | None
    symbols: np.ndarray
    noise_var: float
    crc_ok: bool
    mcs: str
    frame_type: str
    stream_id: int
    seq: int
    start: int
    snr_db: float
    cfo_hz: float
    channel: np.ndarray
    evm_db: float


@dataclass
class RxStats:
    """Running receiver counters (since construction or :meth:`Receiver.reset_stats`)."""

    detections: int = 0  # preamble detections that were examined
    header_failures: int = 0  # detections whose header failed its CRC or named an impossible frame
    crc_failures: int = 0  # data frames whose payload CRC-32 failed (reported with crc_ok False)
    truncated: int = 0  # bursts that ran past the end of the buffer (not reported)
    frames: int = 0  # frames reported


@dataclass(frozen=True)
class _Equalized:
    symbols: np.ndarray  # (n_sym, n_data) complex64
    noise_var: np.ndarray  # (n_data,) float32, per data subcarrier
    subcarrier_noise_var: float  # at the FFT output, before equalization
    track: PhaseTrack


class Receiver:
    """Finds and decodes every burst in a buffer."""

    def __init__(
        self, cfg: PhyConfig, estimator: str = "dft", tracker: PilotTracker | None = None, data_aided: bool = True
    ) -> None:
        self.cfg = cfg
        self.sync = Synchronizer(cfg)
        self.grid = grid_for(cfg)
        self.preamble = preamble_for(cfg)
        self.estimator = make_estimator(estimator, cfg)
        self.tracker = tracker or PilotTracker(cfg)
        self.data_aided = data_aided  # retry a failed CRC with the decoded frame as pilots (_decode_data)
        self.header_codec = HeaderCodec(cfg)
        self.payload_codec = PayloadCodec(cfg)
        self.stats = RxStats()
        self._sample_index = np.arange(cfg.fft_size, dtype=np.float32)

    def reset_stats(self) -> None:
        self.stats = RxStats()

    def demodulate(self, iq: np.ndarray) -> list[RxFrame]:
        """Every burst in ``iq`` ((n,) complex64 baseband, any scale), in order of arrival."""
        iq = _check_iq(iq)
        det = self.sync.detection_metric(iq)
        candidates = np.flatnonzero(det.metric > self.sync.threshold)
        span = self.sync.win_blocks + 2  # blocks over which one STF's metric rises and falls
        frames: list[RxFrame] = []
        next_block = 0
        i = 0
        while i < len(candidates):
            j = int(candidates[i])
            if j < next_block:
                i = int(np.searchsorted(candidates, next_block))
                continue
            peak = j + int(np.argmax(det.metric[j : j + span]))
            if self.sync.is_tone(iq, peak * self.sync.lag):
                next_block = peak + self.sync.win_blocks
                continue
            self.stats.detections += 1
            frame, end = self._receive(iq, peak * self.sync.lag, self.sync.coarse_cfo(det.corr[peak]))
            if frame is None:
                next_block = peak + self.sync.win_blocks
            else:
                frames.append(frame)
                self.stats.frames += 1
                next_block = end // self.sync.lag
        return frames

    def _receive(self, iq: np.ndarray, coarse_start: int, coarse_cfo: float) -> tuple[RxFrame | None, int]:
        sync = self.sync.refine(iq, coarse_start, coarse_cfo)
        if sync is None:
            self.stats.truncated += 1
            return None, 0
        n_hdr = self.header_codec.num_symbols
        y = self._subcarriers(iq, sync, 2, n_hdr)  # (2 LTF + n_hdr, n_used)
        if y is None:
            self.stats.truncated += 1
            return None, 0
        est = self.estimator.estimate(y[:2], self.preamble.ltf_values)
        g = self.grid
        track = common_phase(y[2:, g.pilot_pos], est.h[g.pilot_pos], g.pilot_values(0, n_hdr), est.noise_var)
        eq = self._equalize(y[2:], est, track, est.noise_var)
        header = self.header_codec.decode(eq.symbols.reshape(-1), eq.noise_var)
        n_body = self._body_symbols(header)
        if header is None or n_body is None:
            self.stats.header_failures += 1
            return None, 0
        body = self._subcarriers(iq, sync, 0, n_body, first=n_hdr)
        if body is None:
            self.stats.truncated += 1
            return None, 0
        est = self._reestimate(y, header, track)
        y_ltf, y = y[:2], np.concatenate([y[2:], body])  # (n_hdr + n_body, n_used): tracked together
        track, noise_var = self._track(y, est)
        eq = self._equalize(y, est, track, noise_var)
        payload = None
        if header.frame_type == "data":
            payload, est, eq = self._decode_data(y_ltf, y, header, est, eq)
        end = sync.burst_start + len(self.preamble.samples) + (n_hdr + n_body) * self.cfg.symbol_len
        return self._frame(header, sync, est, eq, n_hdr, payload), end

    def _decode_data(
        self, y_ltf: np.ndarray, y: np.ndarray, header: Header, est: ChannelEstimate, eq: _Equalized
    ) -> tuple[bytes | None, ChannelEstimate, _Equalized]:
        """The payload (None if its CRC fails) and the estimate and equalization it was decoded with.

        When the CRC fails, the decoded frame, re-encoded, serves as pilots: the channel is estimated again from
        every symbol (tens instead of five training symbols, so far less estimation noise on a frequency-selective
        channel) and the body decoded once more. Wrong decisions bias that estimate only a little: a failed frame
        still has most of its bits right. y_ltf : (2, n_used); y : (n_hdr + n_body, n_used).
        """
        mcs, codec, n_hdr = MCS_BY_INDEX[header.mcs_index], self.payload_codec, self.header_codec.num_symbols
        info = codec.decode_bits(eq.symbols[n_hdr:].reshape(-1), eq.noise_var, mcs, header.length)
        payload = codec.check(info, header.scrambler_seed, header.length)
        if payload is not None or not mcs.coded or not self.data_aided:
            return payload, est, eq
        sent = self._known(header, codec.remodulate(info, mcs, header.length))  # (n_hdr + n_body, n_used)
        aligned = y * eq.track.rotation(self.cfg.used_subcarriers, self.cfg.fft_size, sign=-1.0)
        ltf = np.broadcast_to(self.preamble.ltf_values, y_ltf.shape)
        retry = self.estimator.estimate_known(
            np.concatenate([y_ltf, aligned]), np.concatenate([ltf, sent]), est.noise_var, est.noise_dof
        )
        track, noise_var = self._track(y, retry)
        eq_retry = self._equalize(y, retry, track, noise_var)
        info = codec.decode_bits(eq_retry.symbols[n_hdr:].reshape(-1), eq_retry.noise_var, mcs, header.length)
        payload = codec.check(info, header.scrambler_seed, header.length)
        return (payload, retry, eq_retry) if payload is not None else (None, est, eq)

    def _known(self, header: Header, body: np.ndarray | None = None) -> np.ndarray:
        """(n_hdr [+ n_body], n_used) complex64 sent subcarrier values: header, optional body data, pilots."""
        g = self.grid
        data = (
            self.header_codec.encode(header)
            if body is None
            else np.concatenate([self.header_codec.encode(header), body])
        )
        known = np.empty((data.shape[0], self.cfg.num_used), np.complex64)
        known[:, g.data_pos] = data
        known[:, g.pilot_pos] = g.pilot_values(0, data.shape[0])
        return known

    def _reestimate(self, y: np.ndarray, header: Header, track: PhaseTrack) -> ChannelEstimate:
        """Channel estimate from the LTF and the (now known) header symbols; y : (2 + n_hdr, n_used)."""
        known = self._known(header)
        aligned = y[2:] * phasor(-track.phase_rad)[:, None]  # undo the header's common phase
        x = np.concatenate([np.broadcast_to(self.preamble.ltf_values, (2, self.cfg.num_used)), known])
        return self.estimator.estimate(np.concatenate([y[:2], aligned]), x)

    def _body_symbols(self, header: Header | None) -> int | None:
        if header is None:
            return None
        try:
            if header.frame_type == "analog":
                return analog_num_symbols(self.cfg, header.length)
            return body_size(self.cfg, MCS_BY_INDEX[header.mcs_index].name, header.length)[0]
        except PhyError:  # a length no sender could have used
            return None

    def _subcarriers(
        self, iq: np.ndarray, sync: SyncResult, n_ltf: int, n_ofdm: int, first: int = 0
    ) -> np.ndarray | None:
        """CFO-corrected used subcarriers of the last ``n_ltf`` LTF symbols and OFDM symbols first.. first+n_ofdm-1.

        OFDM symbol 0 is the first header symbol. Returns (n_ltf + n_ofdm, n_used) complex64, or None when the
        buffer ends too early.
        """
        cfg, n, t = self.cfg, self.cfg.fft_size, sync.window_start
        first_cp = t + 2 * n + first * cfg.symbol_len  # cyclic prefix of OFDM symbol ``first``
        if t < 0 or first_cp + n_ofdm * cfg.symbol_len > len(iq):
            return None
        # each FFT window's first sample, counted from window_start: the CFO phase it starts with
        offsets = np.concatenate(
            [np.arange(2 - n_ltf, 2) * n, first_cp - t + cfg.cp_len + cfg.symbol_len * np.arange(n_ofdm)]
        )
        # CFO ramp within a window, with the FFT scaling of grid.demodulate folded in
        ramp = phasor(-2 * np.pi * sync.cfo / n * self._sample_index) * (1 / self.grid.tx_scale)
        start_phase = phasor(np.remainder(-2 * np.pi * sync.cfo / n * offsets, 2 * np.pi))  # wrap: float32
        windows = np.empty((offsets.size, n), np.complex64)  # (n_ltf + n_ofdm, fft)
        gather_windows(iq, t + offsets, np.complex64(sync.dc), ramp, start_phase, windows)
        spectrum = scipy.fft.fft(windows, axis=1, overwrite_x=True)
        return np.take(spectrum, self.grid.used_bins, axis=1)

    def _track(self, y: np.ndarray, est: ChannelEstimate) -> tuple[PhaseTrack, float]:
        """Pilot tracking over the whole frame, and the subcarrier noise variance it implies.

        y : (n_sym, n_used) OFDM symbols from the header on. The noise variance combines the LTF estimate
        with the pilot residuals after tracking (weighted by their degrees of freedom), so long frames
        measure it precisely and anything the tracker cannot follow (phase noise, ICI) counts as noise, as
        the data symbols see it.
        """
        g, cfg = self.grid, self.cfg
        reference = g.pilot_values(0, y.shape[0])
        y_pilots, h_pilots = y[:, g.pilot_pos], est.h[g.pilot_pos]
        track = self.tracker.track(y_pilots, h_pilots, reference, est.noise_var)
        residual = self.tracker.residual_power(y_pilots, h_pilots, reference, track)
        # the residual lacks the noise the phase fit absorbed (one real dimension per averaging window)
        absorbed = 1 / (2 * track.phase_window * cfg.num_pilots)
        pilot_noise = residual / (1 + float(est.error_gain[g.pilot_pos].sum()) / cfg.num_pilots - absorbed)
        n_pilot_dof = y_pilots.size
        return track, (est.noise_dof * est.noise_var + n_pilot_dof * pilot_noise) / (est.noise_dof + n_pilot_dof)

    def _equalize(self, y: np.ndarray, est: ChannelEstimate, track: PhaseTrack, noise_var: float) -> _Equalized:
        """y : (n_sym, n_used) OFDM symbols -> equalized data symbols and their noise variance."""
        g, cfg = self.grid, self.cfg
        power = est.h.real**2 + est.h.imag**2
        power = np.maximum(power, CHANNEL_FLOOR * max(float(power.sum()) / power.size, 1e-30))
        weight = np.conj(est.h[g.data_pos]) / power[g.data_pos]  # (n_data,) zero-forcing
        symbols = y[:, g.data_pos]  # (n_sym, n_data), a copy
        symbols *= weight
        symbols *= track.rotation(cfg.data_subcarriers, cfg.fft_size, sign=-1.0)
        noise = noise_var * (1 + est.error_gain[g.data_pos]) / power[g.data_pos] + track.phase_error_var
        # a burst far below float32's range (a detection in near-silence) must reach the demapper as "no
        # information", not as inf or 0: its LLRs are then ~0 and the CRC refuses the frame
        noise = np.clip(np.nan_to_num(noise, nan=_NOISE_MAX, posinf=_NOISE_MAX), _NOISE_MIN, _NOISE_MAX)
        return _Equalized(symbols.astype(np.complex64, copy=False), noise.astype(np.float32), noise_var, track)

    def _frame(
        self, header: Header, sync: SyncResult, est: ChannelEstimate, eq: _Equalized, n_hdr: int, payload: bytes | None
    ) -> RxFrame:
        cfg = self.cfg
        body = eq.symbols[n_hdr:].reshape(-1)
        n_body = body.size // cfg.num_data
        power = np.abs(est.h) ** 2
        noise_var = eq.subcarrier_noise_var
        signal = max(float(power.sum() - noise_var * est.error_gain.sum()) / power.size, 1e-30)
        common = {
            "frame_type": header.frame_type,
            "stream_id": header.stream_id,
            "seq": header.seq,
            "start": sync.burst_start,
            "snr_db": 10 * math.log10(signal / noise_var),
            "cfo_hz": (sync.cfo + eq.track.cfo_residual) * cfg.subcarrier_spacing_hz,
            "channel": est.h,
        }
        if header.frame_type == "analog":
            symbols = body[: header.length]
            noise_var = float(_per_symbol(eq.noise_var, n_body)[: header.length].mean())
            return RxFrame(None, symbols, noise_var, True, "analog", evm_db=10 * math.log10(noise_var), **common)
        mcs = MCS_BY_INDEX[header.mcs_index]
        if payload is None:
            self.stats.crc_failures += 1
        noise_var = float(eq.noise_var.sum()) / cfg.num_data
        return RxFrame(
            payload, body, noise_var, payload is not None, mcs.name, evm_db=10 * math.log10(noise_var), **common
        )


def _per_symbol(noise_var: np.ndarray, n_sym: int) -> np.ndarray:
    """(n_data,) per-subcarrier noise variance -> (n_sym * n_data,) per equalized symbol, row by row."""
    return np.broadcast_to(noise_var, (n_sym, noise_var.size)).reshape(-1)


def _check_iq(iq: np.ndarray) -> np.ndarray:
    if not isinstance(iq, np.ndarray) or not np.issubdtype(iq.dtype, np.complexfloating):
        kind = iq.dtype if isinstance(iq, np.ndarray) else type(iq).__name__
        raise PhyError(f"demodulate expects a complex numpy array of baseband samples, got {kind}")
    if iq.ndim != 1:
        raise PhyError(f"demodulate expects a 1-D sample buffer, got shape {iq.shape}; flatten it")
    if iq.size > MAX_INPUT_SAMPLES:
        raise PhyError(f"buffer of {iq.size} samples exceeds {MAX_INPUT_SAMPLES}; demodulate it in pieces")
    iq = np.ascontiguousarray(iq, dtype=np.complex64)
    if not np.isfinite(iq.view(np.float32)).all():
        raise PhyError("the sample buffer contains NaN or inf; drop or zero the corrupted samples first")
    return iq
