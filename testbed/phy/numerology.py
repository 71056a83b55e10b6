"""The OFDM numerology: one immutable object every PHY stage shares (nobody re-derives it).

Default: IEEE 802.11a-like, 64-point FFT, 16-sample cyclic prefix, subcarriers -26..26 without DC,
pilots at +-7 and +-21 (IEEE 802.11-2020, 17.3.5.10), so 48 data + 4 pilots. Subcarrier indices are
logical (negative = below the centre frequency); ``fft_bins`` maps them to FFT bin numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from testbed.errors import ConfigError

# Pluto (AD9363) bounds, from the ad9361 driver: below ~521 kS/s even the FIR decimator cannot reach.
MIN_SAMPLE_RATE_HZ = 520_834.0
MAX_SAMPLE_RATE_HZ = 61_440_000.0


@dataclass(frozen=True)
class PhyConfig:
    """OFDM numerology and frame limits.

    sample_rate_hz : complex baseband sample rate; sets subcarrier spacing and airtime.
    fft_size, cp_len : samples per OFDM symbol body and cyclic prefix.
    occupied_half_width : subcarriers +-1..+-occupied_half_width carry energy; DC and edges stay empty.
    pilot_subcarriers : logical indices of the pilots (inside the occupied band, never DC).
    max_payload_bytes : largest payload one frame may carry (header length field is 16 bits).
    """

    sample_rate_hz: float = 2_500_000.0
    fft_size: int = 64
    cp_len: int = 16
    occupied_half_width: int = 26
    pilot_subcarriers: tuple[int, ...] = (-21, -7, 7, 21)
    max_payload_bytes: int = 8192

    def __post_init__(self) -> None:
        if not MIN_SAMPLE_RATE_HZ <= self.sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
            raise ConfigError(
                f"sample_rate_hz={self.sample_rate_hz:g} is outside {MIN_SAMPLE_RATE_HZ:g}..{MAX_SAMPLE_RATE_HZ:g} Hz"
            )
        if self.fft_size < 16 or self.fft_size & (self.fft_size - 1):
            raise ConfigError(f"fft_size={self.fft_size} must be a power of two >= 16")
        if not 0 < self.cp_len <= self.fft_size // 2:
            raise ConfigError(f"cp_len={self.cp_len} must be in 1..fft_size/2={self.fft_size // 2}")
        if not 4 <= self.occupied_half_width < self.fft_size // 2:
            raise ConfigError(
                f"occupied_half_width={self.occupied_half_width} must be in 4..{self.fft_size // 2 - 1} "
                "(at least one empty edge bin on each side)"
            )
        pilots = self.pilot_subcarriers
        if len(set(pilots)) != len(pilots) or len(pilots) < 2:
            raise ConfigError(f"pilot_subcarriers={pilots} must hold at least two distinct indices")
        if any(p == 0 or abs(p) > self.occupied_half_width for p in pilots):
            raise ConfigError(f"pilot_subcarriers={pilots} must be non-zero and within +-{self.occupied_half_width}")
        if not 1 <= self.max_payload_bytes <= 65_535:
            raise ConfigError(f"max_payload_bytes={self.max_payload_bytes} must be in 1..65535")

    # --- derived numerology -------------------------------------------------------------------------
    @property
    def subcarrier_spacing_hz(self) -> float:
        return self.sample_rate_hz / self.fft_size

    @property
    def symbol_len(self) -> int:
        """Samples per OFDM symbol including the cyclic prefix."""
        return self.fft_size + self.cp_len

    @property
    def symbol_duration_s(self) -> float:
        return self.symbol_len / self.sample_rate_hz

    @cached_property
    def used_subcarriers(self) -> np.ndarray:
        """(n_used,) int logical indices with energy: -W..-1, 1..W."""
        w = self.occupied_half_width
        return np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])

    @cached_property
    def data_subcarriers(self) -> np.ndarray:
        """(n_data,) int logical indices of data subcarriers, ascending."""
        used = self.used_subcarriers
        return used[~np.isin(used, self.pilot_subcarriers)]

    @cached_property
    def pilot_indices(self) -> np.ndarray:
        """(n_pilots,) int logical pilot indices, ascending."""
        return np.sort(np.asarray(self.pilot_subcarriers, dtype=np.int64))

    @property
    def num_data(self) -> int:
        return len(self.data_subcarriers)

    @property
    def num_pilots(self) -> int:
        return len(self.pilot_subcarriers)

    @property
    def num_used(self) -> int:
        return 2 * self.occupied_half_width

    @property
    def occupied_bandwidth_hz(self) -> float:
        """Width of the band the used subcarriers cover, from the lower edge of bin -W to the upper edge of +W
        (the empty DC bin included): (2W + 1) spacings."""
        return (2 * self.occupied_half_width + 1) * self.subcarrier_spacing_hz

    @property
    def occupied_fraction(self) -> float:
        """Used subcarriers / FFT size: converts per-subcarrier Es/N0 to time-domain SNR."""
        return self.num_used / self.fft_size

    def fft_bins(self, logical: np.ndarray) -> np.ndarray:
        """Map logical subcarrier indices (negative below centre) to FFT bin numbers 0..fft_size-1."""
        return np.mod(np.asarray(logical), self.fft_size)
