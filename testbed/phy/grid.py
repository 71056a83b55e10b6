"""The OFDM resource grid: data and pilots onto subcarriers and back, all symbols of a frame in one 2-D FFT.

Scaling: a symbol whose used subcarriers carry unit-energy values has unit average power per time sample
(x = ifft(X) * fft/sqrt(n_used)); the receiver undoes it, so an ideal channel returns X exactly and a
time-domain noise variance of ``1 / (occupied_fraction * snr)`` becomes ``1 / snr`` per subcarrier.

Pilots sit at data power, BPSK ``pilot_base[k] * p_n`` with the 127-long polarity sequence p_n of IEEE
802.11-2020 17.3.5.10 (the scrambler sequence from the all-ones state, 0 -> +1, 1 -> -1), counted from the
first header symbol.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.fft

from testbed.phy.numerology import PhyConfig
from testbed.phy.scrambler import scrambler_sequence

POLARITY_PERIOD = 127  # IEEE 802.11-2020 eq. (17-25)
POLARITY_SEED = 0x7F  # all-ones scrambler state gives p_0..p_126


class OfdmGrid:
    """Subcarrier map of one numerology, computed once (use :func:`grid_for`)."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.cfg = cfg
        used = cfg.used_subcarriers
        is_pilot = np.isin(used, cfg.pilot_subcarriers)
        #: positions within cfg.used_subcarriers of the data / pilot subcarriers (ascending)
        self.data_pos = np.flatnonzero(~is_pilot)
        self.pilot_pos = np.flatnonzero(is_pilot)
        self.used_bins = cfg.fft_bins(used)
        self.data_bins = self.used_bins[self.data_pos]
        self.pilot_bins = self.used_bins[self.pilot_pos]
        # 802.11 pilot base values (1, 1, 1, -1) on (-21, -7, 7, 21); generalised as "last one negative".
        self.pilot_base = np.ones(cfg.num_pilots, np.float32)
        self.pilot_base[-1] = -1.0
        polarity = (1.0 - 2.0 * scrambler_sequence(POLARITY_SEED, POLARITY_PERIOD)).astype(np.float32)
        #: (127, n_pilots) float32 pilot values of symbol n at row n % 127
        self.pilot_table = polarity[:, None] * self.pilot_base[None, :]
        self.pilot_table.flags.writeable = False
        self.tx_scale = np.float32(cfg.fft_size / np.sqrt(cfg.num_used))
        self._time_scale = np.float32(1 / np.sqrt(cfg.num_used))
        # modulate() gathers each symbol's spectrum from [data | pilots | 0]: bin b reads column _bin_source[b]
        self._bin_source = np.full(cfg.fft_size, cfg.num_data + cfg.num_pilots)
        self._bin_source[self.data_bins] = np.arange(cfg.num_data)
        self._bin_source[self.pilot_bins] = cfg.num_data + np.arange(cfg.num_pilots)

    def pilot_values(self, first_symbol: int, num_symbols: int) -> np.ndarray:
        """(num_symbols, n_pilots) float32 transmitted pilot values for symbols first_symbol, first_symbol+1, ..."""
        return self.pilot_table[(first_symbol + np.arange(num_symbols)) % POLARITY_PERIOD]

    def modulate(self, data: np.ndarray, first_symbol: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """OFDM symbols with cyclic prefix.

        data : (n_sym, n_data) complex, unit mean energy, on cfg.data_subcarriers in ascending order.
        first_symbol : polarity index of the first row (0 = first header symbol).
        out : optional (n_sym * symbol_len,) complex64 array to write into (saves a copy for the caller).
        Returns (n_sym * symbol_len,) complex64, unit average power.
        """
        cfg = self.cfg
        n_sym, n_data = data.shape
        columns = np.empty((n_sym, n_data + cfg.num_pilots + 1), np.complex64)  # [data | pilots | 0]
        columns[:, :n_data] = data
        columns[:, n_data:-1] = self.pilot_values(first_symbol, n_sym)
        columns[:, -1] = 0
        spectrum = np.take(columns, self._bin_source, axis=1)  # (n_sym, fft), C-contiguous
        return self.to_time(spectrum, out)

    def to_time(self, spectrum: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """OFDM symbols with cyclic prefix from their spectra (the last step of :meth:`modulate`).

        spectrum : (n_sym, fft) complex64 C-contiguous FFT bins, overwritten (used as the IFFT's work space).
        out : optional (n_sym * symbol_len,) complex64 array to write into.
        Returns (n_sym * symbol_len,) complex64, unit average power for unit-energy used subcarriers.
        """
        cfg = self.cfg
        n_sym = spectrum.shape[0]
        # ifft * fft/sqrt(n_used) == unnormalized inverse sum / sqrt(n_used)
        body = scipy.fft.ifft(spectrum, axis=1, norm="forward", overwrite_x=True, workers=1)
        if out is None:
            out = np.empty(n_sym * cfg.symbol_len, np.complex64)
        rows = out.reshape(n_sym, cfg.symbol_len)  # (n_sym, cp + fft)
        np.multiply(body, self._time_scale, out=rows[:, cfg.cp_len :])
        rows[:, : cfg.cp_len] = rows[:, -cfg.cp_len :]
        return out

    def demodulate(self, windows: np.ndarray) -> np.ndarray:
        """(n_sym, fft) complex64 time windows (CP removed) -> (n_sym, n_used) complex64 subcarrier values."""
        spectrum = scipy.fft.fft(windows, axis=1)
        return spectrum[:, self.used_bins] * (1 / self.tx_scale)


@cache
def grid_for(cfg: PhyConfig) -> OfdmGrid:
    """The resource grid of ``cfg``, built once per numerology."""
    return OfdmGrid(cfg)
