"""Burst assembly: preamble | header | body, every part at unit average power, no gaps (layout.py).

Data bursts take the fused path (txkernel.py: one numba pass into the spectrum, one IFFT); analog bursts and
the reference chain (:meth:`Transmitter.reference_data_burst`) use the separate stages it is tested against.
"""

from __future__ import annotations

import numpy as np

from testbed.errors import PhyError
from testbed.phy.grid import grid_for
from testbed.phy.header import ANALOG_MCS_INDEX, Header, HeaderCodec
from testbed.phy.layout import MAX_ANALOG_SYMBOLS, analog_num_symbols
from testbed.phy.mcs import Mcs, get_mcs
from testbed.phy.numerology import PhyConfig
from testbed.phy.payload import PayloadCodec
from testbed.phy.preamble import preamble_for
from testbed.phy.txkernel import FusedBurstEncoder


class Transmitter:
    """Builds complete bursts for one numerology."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.cfg = cfg
        self.preamble = preamble_for(cfg)
        self.grid = grid_for(cfg)
        self.header_codec = HeaderCodec(cfg)
        self.payload_codec = PayloadCodec(cfg)
        self._fused = FusedBurstEncoder(cfg, self.header_codec)
        self._n_pre = len(self.preamble.samples)
        # Filler for the unused tail of an analog frame's last symbol: unit modulus, known, low PAPR.
        self._analog_fill = self.preamble.ltf_values[self.grid.data_pos].astype(np.complex64)

    def data_burst(self, payload: bytes, mcs: str, stream_id: int, seq: int) -> np.ndarray:
        """(layout.burst_num_samples,) complex64 unit-power burst carrying ``payload``."""
        header, payload, m = self._data_header(payload, mcs, stream_id, seq)
        spectrum = self._fused.spectrum(header, payload, m)  # (n_hdr + n_body, fft)
        out = np.empty(self._n_pre + spectrum.shape[0] * self.cfg.symbol_len, np.complex64)
        out[: self._n_pre] = self.preamble.samples
        self.grid.to_time(spectrum, out=out[self._n_pre :])
        return out

    def reference_data_burst(self, payload: bytes, mcs: str, stream_id: int, seq: int) -> np.ndarray:
        """What :meth:`data_burst` returns, built stage by stage (payload, header and grid codecs); for tests."""
        header, payload, m = self._data_header(payload, mcs, stream_id, seq)
        return self._burst(header, self.payload_codec.encode(payload, m, header.scrambler_seed))

    def _data_header(self, payload: bytes, mcs: str, stream_id: int, seq: int) -> tuple[Header, bytes, Mcs]:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise PhyError(f"payload must be bytes, got {type(payload).__name__}; encode it first")
        payload = bytes(payload)
        if len(payload) > self.cfg.max_payload_bytes:
            raise PhyError(
                f"payload of {len(payload)} bytes exceeds max_payload_bytes={self.cfg.max_payload_bytes}; "
                "segment it (testbed.link) or raise the limit in PhyConfig"
            )
        m = get_mcs(mcs)
        return Header(m.index, "data", len(payload), stream_id, seq), payload, m

    def analog_burst(self, symbols: np.ndarray, stream_id: int, seq: int) -> np.ndarray:
        """(layout.analog_burst_num_samples,) complex64 burst with ``symbols`` scaled to unit mean power."""
        if not isinstance(symbols, np.ndarray) or not np.issubdtype(symbols.dtype, np.complexfloating):
            kind = symbols.dtype if isinstance(symbols, np.ndarray) else type(symbols).__name__
            raise PhyError(f"analog symbols must be a complex numpy array, got {kind}")
        if symbols.ndim != 1 or not 1 <= symbols.size <= MAX_ANALOG_SYMBOLS:
            raise PhyError(f"analog symbols must be 1-D with 1..{MAX_ANALOG_SYMBOLS} entries, got {symbols.shape}")
        power = float(np.mean(np.abs(symbols.astype(np.complex128)) ** 2))
        if not np.isfinite(power) or power <= 0:
            raise PhyError("analog symbols must be finite and not all zero (they are scaled to unit mean power)")
        n_sym = analog_num_symbols(self.cfg, symbols.size)
        body = np.tile(self._analog_fill, n_sym)
        body[: symbols.size] = symbols / np.sqrt(power)
        header = Header(ANALOG_MCS_INDEX, "analog", symbols.size, stream_id, seq)
        return self._burst(header, body.reshape(n_sym, self.cfg.num_data))

    def _burst(self, header: Header, body: np.ndarray) -> np.ndarray:
        symbols = np.concatenate([self.header_codec.encode(header), body])  # (n_hdr + n_body, n_data)
        n_pre = len(self.preamble.samples)
        out = np.empty(n_pre + symbols.shape[0] * self.cfg.symbol_len, np.complex64)
        out[:n_pre] = self.preamble.samples
        self.grid.modulate(symbols, out=out[n_pre:])
        return out
