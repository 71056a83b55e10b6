"""Frame layout and exact burst lengths, so airtime is known without running the DSP.

A burst is ``preamble | header | body`` with no gaps:

- preamble: short training field, 10 repetitions of fft/4 samples (detection, AGC, coarse CFO), then the
  long training field, a 2*cp guard and two fft-long training symbols (timing, fine CFO, channel);
  IEEE 802.11-2020 17.3.3.
- header: ``HEADER_INFO_BITS`` bits (MCS, frame type, length, stream id, sequence, CRC-16) plus
  ``TAIL_BITS``, BPSK rate 1/2, filling ``header_num_symbols`` OFDM symbols (zero padded).
- data body: ``8 * (payload_bytes + CRC_BYTES)`` bits (+ ``TAIL_BITS`` when coded), padded to whole
  OFDM symbols of ``N_DBPS`` bits.
- analog body: the complex symbols on the data subcarriers, padded to whole OFDM symbols.

``OfdmModem.modulate`` output lengths equal these numbers exactly (tested), so link and learning layers
charge real airtime from here.
"""

from __future__ import annotations

import functools
import math

from testbed.errors import PhyError
from testbed.phy.mcs import Mcs, get_mcs
from testbed.phy.numerology import PhyConfig

HEADER_INFO_BITS = 64
TAIL_BITS = 6  # K-1 zeros that return the K=7 encoder to state 0
CRC_BYTES = 4  # CRC-32 over the payload
MAX_ANALOG_SYMBOLS = 65_535  # header length field is 16 bits


def preamble_num_samples(cfg: PhyConfig) -> int:
    return 10 * (cfg.fft_size // 4) + 2 * cfg.cp_len + 2 * cfg.fft_size


def header_num_symbols(cfg: PhyConfig) -> int:
    return math.ceil(2 * (HEADER_INFO_BITS + TAIL_BITS) / cfg.num_data)


def _as_mcs(mcs: str | Mcs) -> Mcs:
    return mcs if isinstance(mcs, Mcs) else get_mcs(mcs)


def payload_num_symbols(cfg: PhyConfig, payload_bytes: int, mcs: str | Mcs) -> int:
    """OFDM symbols in the body of a data frame carrying ``payload_bytes``."""
    if not 0 <= payload_bytes <= cfg.max_payload_bytes:
        raise PhyError(f"payload of {payload_bytes} bytes is outside 0..max_payload_bytes={cfg.max_payload_bytes}")
    m = _as_mcs(mcs)
    n_bits = 8 * (payload_bytes + CRC_BYTES) + (TAIL_BITS if m.coded else 0)
    return math.ceil(n_bits / m.data_bits_per_ofdm_symbol(cfg.num_data))


def analog_num_symbols(cfg: PhyConfig, n_symbols: int) -> int:
    """OFDM symbols in the body of an analog frame carrying ``n_symbols`` complex values."""
    if not 1 <= n_symbols <= MAX_ANALOG_SYMBOLS:
        raise PhyError(f"an analog frame carries 1..{MAX_ANALOG_SYMBOLS} symbols, got {n_symbols}")
    return math.ceil(n_symbols / cfg.num_data)


@functools.lru_cache(maxsize=4096)
def burst_num_samples(cfg: PhyConfig, payload_bytes: int, mcs: str | Mcs) -> int:
    """Exact length in samples of ``modulate(payload, mcs)`` for a payload of ``payload_bytes`` (cached: the
    link asks it for every frame it places; the arguments are immutable)."""
    n_sym = header_num_symbols(cfg) + payload_num_symbols(cfg, payload_bytes, mcs)
    return preamble_num_samples(cfg) + n_sym * cfg.symbol_len


def analog_burst_num_samples(cfg: PhyConfig, n_symbols: int) -> int:
    """Exact length in samples of ``modulate_symbols(symbols)`` for ``n_symbols`` complex values."""
    n_sym = header_num_symbols(cfg) + analog_num_symbols(cfg, n_symbols)
    return preamble_num_samples(cfg) + n_sym * cfg.symbol_len


def phy_bit_rate_bps(cfg: PhyConfig, mcs: str | Mcs) -> float:
    """Information bit rate while the body is on air (no preamble/header overhead)."""
    return _as_mcs(mcs).data_bits_per_ofdm_symbol(cfg.num_data) / cfg.symbol_duration_s
