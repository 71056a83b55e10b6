"""Exact uncoded bit error rates in AWGN for the 802.11 Gray-mapped constellations, the reference that BER
sweeps are compared against.

Square Gray M-QAM is two independent Gray sqrt(M)-PAM axes, each with half the symbol energy; BPSK is one
2-PAM axis with all of it. The per-axis BER is the exact expression of K. Cho and D. Yoon, "On the general
BER expression of one- and two-dimensional amplitude modulations", IEEE Trans. Commun. 50(7):1074-1080, 2002,
(the per-axis bit error probability P_I(k) of its square/rectangular QAM result, averaged over the axis
bits; a 1-D PAM uses the same sum with the whole symbol energy). The 802.11 per-axis labels (the encoding
tables of 17.3.5.8) are exactly the reflected binary Gray code the paper assumes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from testbed.errors import PhyError


def _pam_ber(axis_snr: np.ndarray, levels: int) -> np.ndarray:
    """Cho-Yoon's P_I(k) averaged over k: BER of Gray ``levels``-PAM at per-axis Es/N0 ``axis_snr`` (linear)."""
    n_bits = int(np.log2(levels))
    scale = np.sqrt(3 * axis_snr / (levels**2 - 1))  # half the minimum distance over sqrt(N0)
    total = np.zeros_like(axis_snr)
    for k in range(1, n_bits + 1):  # bit position k of the axis label
        weight_step = 2 ** (k - 1)
        for i in range(int((1 - 2.0**-k) * levels)):
            floor_term = (i * weight_step) // levels
            sign = -1.0 if floor_term % 2 else 1.0
            weight = weight_step - np.floor(i * weight_step / levels + 0.5)
            total += sign * weight * erfc((2 * i + 1) * scale)
    return total / (levels * n_bits)


def uncoded_ber(es_n0_db: float | np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Bit error rate of uncoded Gray BPSK/QPSK/16QAM/64QAM in AWGN versus Es/N0 per symbol in dB.

    es_n0_db : scalar or array, symbol energy over noise density (the SNR per data subcarrier).
    Returns float64 array of the same shape. For BPSK Es/N0 = Eb/N0; for QPSK BER(Es/N0) = BPSK(Es/N0 - 3 dB).
    """
    if bits_per_symbol not in (1, 2, 4, 6):
        raise PhyError(f"bits_per_symbol must be 1, 2, 4 or 6, got {bits_per_symbol!r}")
    db = np.asarray(es_n0_db, dtype=np.float64)
    if np.isnan(db).any():
        raise PhyError("es_n0_db contains NaN; pass finite SNR values in dB")
    es_n0 = 10.0 ** (db / 10.0)
    if bits_per_symbol == 1:
        return _pam_ber(es_n0, 2)
    return _pam_ber(es_n0 / 2, 2 ** (bits_per_symbol // 2))  # each axis carries half of Es
